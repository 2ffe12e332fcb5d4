/**
 * One `job-event` message: the event of a finished job becomes one delivery per matching target
 * (subscriptions and the job's callback-url), and each new delivery gets its own message, so every
 * target is retried on its own. Dispatching twice creates nothing twice (deliveries are unique per
 * event and target, and a dispatched event is not dispatched again).
 */
import { log } from "../../shared/log";
import { sendAll } from "../../shared/queue/send";
import type { DeliveryMessage, JobEventMessage } from "../../shared/queue/webhook-deliveries";
import { dispatchEvent } from "./deliveries";

export async function sendDeliveries(queue: Queue, ids: string[]): Promise<void> {
	await sendAll(
		queue,
		ids.map((delivery_id): DeliveryMessage => ({ kind: "delivery", delivery_id })),
	);
}

export async function handleJobEvent(body: JobEventMessage, env: WebhooksEnv): Promise<void> {
	const result = await dispatchEvent(env.DB, body.event_id);
	switch (result.kind) {
		case "missing":
			log("warn", "webhook_event_missing", { event_id: body.event_id, job_id: body.job_id });
			return;
		case "already-dispatched":
			return;
		case "dispatched":
			// If this send fails the message is retried, but the deliveries exist already: the sweeper
			// finds them overdue and sends them.
			await sendDeliveries(env.WEBHOOK_DELIVERIES, result.deliveryIds);
			log("info", "webhook_event_dispatched", { event_id: body.event_id, deliveries: result.deliveryIds.length });
			return;
	}
}
