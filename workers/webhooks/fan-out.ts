/**
 * One `job-event`, `batch-event` or `caption-event` message: the event of a finished job (or settled batch, or written caption) becomes
 * one delivery per matching target (subscriptions and the job's or batch's callback URL), and each
 * new delivery gets its own message, so every target is retried on its own. Dispatching twice
 * creates nothing twice (deliveries are unique per event and target, and a dispatched event is not
 * dispatched again).
 */
import { notifyEventHub } from "../../shared/events/notify";
import { log } from "../../shared/log";
import { sendAll } from "../../shared/queue/send";
import type { DeliveryMessage, EventMessage } from "../../shared/queue/webhook-deliveries";
import type { UndispatchedEvent } from "../../shared/webhooks/outbox";
import { recordBatchProgress } from "./batch-progress";
import { readSettings } from "./config";
import { dispatchEvent } from "./deliveries";

export async function sendDeliveries(queue: Queue, ids: string[]): Promise<void> {
	await sendAll(
		queue,
		ids.map((delivery_id): DeliveryMessage => ({ kind: "delivery", delivery_id })),
	);
}

/** The message that dispatches an event of the outbox. */
export function eventMessage(event: UndispatchedEvent): EventMessage {
	if (event.job_id !== null) return { kind: "job-event", event_id: event.id, job_id: event.job_id };
	if (event.batch_id !== null) return { kind: "batch-event", event_id: event.id, batch_id: event.batch_id };
	return { kind: "caption-event", event_id: event.id };
}

/** A job of a batch finished: its batch's progress goes to the subscriptions it is due to. */
async function sendBatchProgress(env: WebhooksEnv, jobId: string): Promise<void> {
	const settings = readSettings(env);
	const { deliveries, event } = await recordBatchProgress(env.DB, jobId, {
		chain: settings.MODEL_CHAIN,
		limits: settings.MODEL_RATE_LIMITS,
	});
	// The stream's progress event goes out now, not at the event hub's next 15-second read.
	if (event !== null) await notifyEventHub(env.EVENT_HUB, [event]);
	if (deliveries.length > 0) await sendDeliveries(env.WEBHOOK_DELIVERIES, deliveries);
}

export async function handleEvent(body: EventMessage, env: WebhooksEnv): Promise<void> {
	const result = await dispatchEvent(env.DB, body.event_id);
	switch (result.kind) {
		case "missing":
			log("warn", "webhook_event_missing", { ...body });
			return;
		case "already-dispatched":
			// Recorded dispatched by its finish (no target then: shared/webhooks/outbox.ts) or a message
			// sent again: a batch job's still paces its batch's progress (which sends nothing twice).
			if (body.kind === "job-event") await sendBatchProgress(env, body.job_id);
			return;
		case "dispatched":
			// If this send fails the message is retried, but the deliveries exist already: the sweeper
			// finds them overdue and sends them.
			await sendDeliveries(env.WEBHOOK_DELIVERIES, result.deliveryIds);
			log("info", "webhook_event_dispatched", { event_id: body.event_id, deliveries: result.deliveryIds.length });
			if (body.kind === "job-event") await sendBatchProgress(env, body.job_id);
			return;
	}
}
