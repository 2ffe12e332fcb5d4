/**
 * The `webhook-deliveries-dlq` consumer: a delivery whose message exhausted its retries (the
 * handler kept failing, e.g. D1 was unavailable) is marked failed, so no delivery stays pending
 * forever. An event whose fan-out kept failing is dispatched once more here; if that fails too it
 * stays undispatched and the cron tries again later.
 */
import { errorMessage, log } from "../../shared/log";
import { ACK, type Outcome } from "../../shared/queue/runner";
import { WebhookMessage } from "../../shared/queue/webhook-deliveries";
import { failPendingDelivery } from "./deliveries";
import { handleEvent } from "./fan-out";

export const DEAD_LETTER_ERROR = "Dead-lettered: the delivery message exhausted its retries";

export async function handleDeadLetter(message: Message<unknown>, env: WebhooksEnv): Promise<Outcome> {
	const parsed = WebhookMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_webhook_dead_letter", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return ACK;
	}
	const body = parsed.data;
	if (body.kind === "delivery") {
		if (await failPendingDelivery(env.DB, body.delivery_id, DEAD_LETTER_ERROR)) {
			log("warn", "webhook_delivery_dead_lettered", { delivery_id: body.delivery_id });
		}
		return ACK;
	}
	// Its cron is the event's safety net: a failure here is logged and the event left undispatched.
	await handleEvent(body, env).catch((err) =>
		log("error", "webhook_event_dead_lettered", { event_id: body.event_id, error: errorMessage(err) }),
	);
	return ACK;
}
