/**
 * `batch.progress` from the webhooks Worker: after a job's event is fanned out, if the job belongs
 * to a running batch, the batch's progress is recorded (shared/batches/progress-events.ts): its
 * event for the event stream at most every five seconds, and a delivery to each subscription that
 * lists `batch.progress` (opt-in) at most once a minute, sent and retried like any other.
 */
import { type PaceLimits, recordProgress, runningBatchOfJob } from "../../shared/batches/progress-events";
import { BATCH_PROGRESS_EVENT } from "../../shared/webhooks/schema";
import { newDeliveryId, subscriptionsFor } from "./deliveries";

/** Records the progress of job `jobId`'s batch; returns the ids of the deliveries made. */
export async function recordBatchProgress(
	db: D1Database,
	jobId: string,
	pace: PaceLimits,
	now = Date.now(),
): Promise<string[]> {
	const batch = await runningBatchOfJob(db, jobId);
	if (!batch) return [];
	const targets = await subscriptionsFor(db, BATCH_PROGRESS_EVENT, batch.key_prefix);
	return recordProgress(db, batch, targets, pace, () => newDeliveryId(now), now);
}
