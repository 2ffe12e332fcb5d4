/**
 * Webhooks Worker: consumes `webhook-deliveries` (job and batch events fan out into deliveries; each delivery
 * is a signed, retried, logged HTTP attempt) and its dead-letter queue, and sweeps on a cron (and,
 * under `npm run dev`, through its `WebhooksRecovery` entrypoint: recovery.ts); the sweep also seals
 * subscription secrets still stored in clear from before sealing.
 */
import { errorMessage, log } from "../../shared/log";
import { ACK, type Outcome, runBatch } from "../../shared/queue/runner";
import { WebhookMessage } from "../../shared/queue/webhook-deliveries";
import { SecretsKeyMismatch, verifySecretsKey } from "../../shared/webhooks/secrets-key";
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
		case "caption-event":
			await handleEvent(body, env);
			return ACK;
		case "delivery":
			return handleDelivery(message, body, env, settings);
	}
}

/** How long a batch waits in its queue while this Worker's WEBHOOK_SECRETS_KEY is the wrong one. */
const KEY_MISMATCH_RETRY_SECONDS = 300;

export default {
	async queue(batch, env, _ctx) {
		const settings = readSettings(env);
		try {
			await verifySecretsKey(env.DB, {
				current: settings.WEBHOOK_SECRETS_KEY,
				previous: settings.WEBHOOK_SECRETS_KEY_PREVIOUS,
			});
		} catch (err) {
			if (!(err instanceof SecretsKeyMismatch)) throw err;
			// Nothing is sent with a key that cannot open the stored secrets: the batch waits in its queue.
			log("error", "webhook_secrets_key_mismatch", { error: errorMessage(err), messages: batch.messages.length });
			batch.retryAll({ delaySeconds: KEY_MISMATCH_RETRY_SECONDS });
			return;
		}
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
