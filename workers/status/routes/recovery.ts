/**
 * `POST /v1/admin/sweep` (admin, local development only): runs the production crons' recovery
 * and retention sweeps now, through the consumer's and the webhooks Worker's recovery entrypoints. Crons do not
 * fire under `wrangler dev`, so `npm run dev` calls this at start (with `restarted_at`: whatever
 * the previous run left in flight is sent again at once) and periodically. The entrypoints are
 * bound only in the local config (scripts/lib/configs.ts): a deployment answers 404.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { ConsumerSweepReport, RecoveryCutoffs, SweepReport, WebhooksSweepReport } from "../../../shared/recovery";
import { ApiError, ERROR_CODES } from "../api-error";
import type { AppEnv } from "../app-env";
import { requireAdmin } from "../auth/authorisation";
import { authenticated, errors, json } from "../responses";
import { validationHook } from "../validation";

const sweepRoute = createRoute({
	method: "post",
	path: "/v1/admin/sweep",
	operationId: "runRecoverySweep",
	summary: "Run the recovery sweeps now (admin, local development only)",
	description:
		"What the crons do in production: re-queue stalled jobs, resend stalled batch listings, undispatched webhook events and stalled deliveries, and archive and delete rows past their retention (RETENTION_*_DAYS). `npm run dev` calls it at start and periodically (crons do not fire locally). Answers 404 on a deployment.",
	security: authenticated,
	middleware: requireAdmin("run the recovery sweep"),
	request: { body: { required: false, content: { "application/json": { schema: RecoveryCutoffs } } } },
	responses: { 200: json(SweepReport, "What each Worker sent again"), ...errors(400, 401, 403, 404, 415) },
});

/** The entrypoints' one method (the generated Env types a cross-Worker entrypoint as a plain Service). */
interface Sweeper {
	sweep(cutoffs: RecoveryCutoffs): Promise<unknown>;
}
const sweeper = (service: Service) => service as unknown as Sweeper;

export const recoveryRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
	sweepRoute,
	async (c) => {
		const { CONSUMER_RECOVERY: consumer, WEBHOOKS_RECOVERY: webhooks } = c.env;
		if (!consumer || !webhooks) {
			throw new ApiError(404, ERROR_CODES[404], "The recovery sweep runs on a cron here; this route is local only");
		}
		const cutoffs = c.req.valid("json") ?? {};
		const [consumerReport, webhooksReport] = await Promise.all([
			sweeper(consumer).sweep(cutoffs),
			sweeper(webhooks).sweep(cutoffs),
		]);
		const report: SweepReport = {
			consumer: ConsumerSweepReport.parse(consumerReport),
			webhooks: WebhooksSweepReport.parse(webhooksReport),
		};
		return c.json(report, 200);
	},
);
