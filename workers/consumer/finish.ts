/**
 * Hand-off from the consumer to webhook delivery: the event of a finished job (already in the
 * outbox, shared/webhooks/outbox.ts) goes onto the `webhook-deliveries` queue. A failed send is
 * not an error for the caller: the event stays undispatched and the webhooks Worker's cron sends it.
 */
import { errorMessage, log } from "../../shared/log";
import type { FinishedJob } from "../../shared/webhooks/outbox";
import type { JobEventMessage } from "../../shared/webhooks/schema";

export async function emitJobFinished(env: { WEBHOOK_DELIVERIES: Queue }, finished: FinishedJob): Promise<void> {
	const message: JobEventMessage = { kind: "job-event", event_id: finished.eventId, job_id: finished.job.id };
	try {
		await env.WEBHOOK_DELIVERIES.send(message, { contentType: "json" });
	} catch (err) {
		log("warn", "webhook_event_not_enqueued", { event_id: finished.eventId, error: errorMessage(err) });
	}
}
