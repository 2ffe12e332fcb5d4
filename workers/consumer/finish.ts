/**
 * Making a job terminal, wherever the consumer does it (a caption, a dead letter, a sweep): the
 * statement that finishes the job commits with its webhook event (shared/webhooks/outbox.ts), and
 * with its batch's final event when this was the batch's last unfinished job; then the events go
 * onto `webhook-deliveries`, and the event hub hears of them at once (shared/events/notify.ts). A failed send is not an error here: the event stays undispatched and
 * the webhooks Worker's cron sends it.
 */
import { batchEventMessage } from "../../shared/batches/settle";
import type { EventHub } from "../../shared/events/hub";
import { notifyEventHub } from "../../shared/events/notify";
import type { JobRow } from "../../shared/jobs/schema";
import { sendOrLeaveToSweeper } from "../../shared/queue/send";
import type { JobEventMessage } from "../../shared/queue/webhook-deliveries";
import { finishWithEvent } from "../../shared/webhooks/outbox";

/**
 * Runs `finish` (an UPDATE/INSERT … RETURNING * that makes job `jobId` terminal, or changes
 * nothing) with the job's event and enqueues the event. Returns the finished row, or null when the
 * statement changed nothing: the lease was lost or the job had already finished, and nothing is
 * written or sent.
 */
export async function finishJob(
	env: { DB: D1Database; WEBHOOK_DELIVERIES: Queue; EVENT_HUB: DurableObjectNamespace<EventHub> },
	finish: D1PreparedStatement,
	jobId: string,
	now: number,
): Promise<JobRow | null> {
	const finished = await finishWithEvent(env.DB, finish, jobId, now);
	if (!finished) return null;
	// Live streams first (GET /v1/events): the webhook fan-out waits for its queue's batch.
	await notifyEventHub(env.EVENT_HUB, [finished.eventId, ...(finished.batch ? [finished.batch.eventId] : [])]);
	const event: JobEventMessage = { kind: "job-event", event_id: finished.eventId, job_id: jobId };
	await sendOrLeaveToSweeper(
		env.WEBHOOK_DELIVERIES,
		{ body: event, contentType: "json" },
		{ queue: "webhook-deliveries", event_id: finished.eventId },
	);
	if (finished.batch) {
		await sendOrLeaveToSweeper(
			env.WEBHOOK_DELIVERIES,
			{ body: batchEventMessage(finished.batch), contentType: "json" },
			{ queue: "webhook-deliveries", event_id: finished.batch.eventId },
		);
	}
	return finished.job;
}
