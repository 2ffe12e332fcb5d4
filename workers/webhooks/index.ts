/**
 * Webhooks Worker: consumes `webhook-deliveries` (job events fan out into deliveries; each delivery
 * is a signed, retried, logged HTTP attempt) and its dead-letter queue, and sweeps on a cron.
 */
import { errorMessage, log } from "../../shared/log";
import { mapConcurrent } from "../../shared/queue/concurrency";
import { WebhookMessage } from "../../shared/webhooks/schema";
import { readSettings, type WebhookSettings } from "./config";
import { handleDeadLetter } from "./dead-letter";
import { handleDelivery, type Outcome } from "./delivery";
import { handleJobEvent } from "./fan-out";
import { sweepWebhooks } from "./sweeper";

const isDeadLetterQueue = (queue: string) => queue.endsWith("-dlq");

async function handle(message: Message<unknown>, env: WebhooksEnv, settings: WebhookSettings): Promise<Outcome> {
	const parsed = WebhookMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_webhook_message", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return { ack: true };
	}
	const body = parsed.data;
	if (body.kind === "job-event") {
		await handleJobEvent(body, env);
		return { ack: true };
	}
	return handleDelivery(message, body, env, settings);
}

export default {
	async queue(batch, env, _ctx) {
		const settings = readSettings(env);
		await mapConcurrent(batch.messages, settings.WEBHOOK_CONCURRENCY, async (message) => {
			let outcome: Outcome;
			try {
				if (isDeadLetterQueue(batch.queue)) {
					await handleDeadLetter(message, env);
					outcome = { ack: true };
				} else {
					outcome = await handle(message, env, settings);
				}
			} catch (err) {
				// Unexpected (D1 unavailable): this message alone is retried; after max_retries it is dead-lettered.
				log("error", "webhook_message_failed", { message_id: message.id, error: errorMessage(err) });
				outcome = { retryAfterSeconds: Math.min(60, 2 ** message.attempts) };
			}
			if ("ack" in outcome) message.ack();
			else message.retry({ delaySeconds: outcome.retryAfterSeconds });
		});
	},

	async scheduled(_controller, env, ctx) {
		ctx.waitUntil(sweepWebhooks(env));
	},
} satisfies ExportedHandler<WebhooksEnv>;
