/**
 * Webhooks Worker: consumes `webhook-deliveries` (job and batch events fan out into deliveries; each delivery
 * is a signed, retried, logged HTTP attempt) and its dead-letter queue, and sweeps on a cron (and,
 * under `npm run dev`, through its `WebhooksRecovery` entrypoint: recovery.ts); the sweep also seals
 * subscription secrets still stored in clear from before sealing.
 */
import { log } from "../../shared/log";
import { ACK, type Outcome, runBatch } from "../../shared/queue/runner";
import { WebhookMessage } from "../../shared/queue/webhook-deliveries";
import { readSettings, type WebhookSettings } from "./config";
import { handleDeadLetter } from "./dead-letter";
import { handleDelivery } from "./delivery";
import { handleEvent } from "./fan-out";
import { recoverWebhooks } from "./recovery";

export { WebhooksRecovery } from "./recovery";

async function handle(message: Message<unknown>, env: WebhooksEnv, settings: WebhookSettings): Promise<Outcome> {
	const parsed = WebhookMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_webhook_message", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return ACK;
	}
	const body = parsed.data;
	switch (body.kind) {
		case "job-event":
		case "batch-event":
			await handleEvent(body, env);
			return ACK;
		case "delivery":
			return handleDelivery(message, body, env, settings);
	}
}

export default {
	async queue(batch, env, _ctx) {
		const settings = readSettings(env);
		await runBatch(batch, {
			concurrency: settings.WEBHOOK_CONCURRENCY,
			db: env.DB,
			live: () => (message) => handle(message, env, settings),
			deadLetter: () => (message) => handleDeadLetter(message, env),
		});
	},

	async scheduled(_controller, env, ctx) {
		ctx.waitUntil(recoverWebhooks(env));
	},
} satisfies ExportedHandler<WebhooksEnv>;
