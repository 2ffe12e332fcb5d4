/**
 * The webhooks Worker's recovery sweep: the outbox (undispatched events) and stalled deliveries.
 * The cron runs it with the production cut-offs; `npm run dev` runs it through the
 * `WebhooksRecovery` entrypoint (bound to the status Worker only locally) at start and
 * periodically, with its own.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { type RecoveryCutoffs, staleBefore, type WebhooksSweepReport } from "../../shared/recovery";
import { SWEEP_GRACE_MS, sweepWebhooks } from "./sweeper";

export async function recoverWebhooks(
	env: WebhooksEnv,
	cutoffs: RecoveryCutoffs = {},
	now = Date.now(),
): Promise<WebhooksSweepReport> {
	const swept = await sweepWebhooks(env, now, {
		before: staleBefore(cutoffs, now, SWEEP_GRACE_MS),
		touchedBefore: cutoffs.restarted_at ?? 0,
	});
	return { events_resent: swept.events, deliveries_resent: swept.deliveries, truncated: swept.truncated };
}

export class WebhooksRecovery extends WorkerEntrypoint<WebhooksEnv> {
	sweep(cutoffs: RecoveryCutoffs): Promise<WebhooksSweepReport> {
		return recoverWebhooks(this.env, cutoffs);
	}
}
