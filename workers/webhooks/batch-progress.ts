/**
 * `batch.progress` from the webhooks Worker: after a job's event is fanned out, if the job belongs
 * to a running batch, the batch's progress is recorded (shared/batches/progress-events.ts): its
 * event for the event stream at most every five seconds, and a delivery to each subscription that
 * lists `batch.progress` (opt-in) at most once a minute, sent and retried like any other.
 */
import {
	type PaceLimits,
	type RecordedProgress,
	recordProgress,
	runningBatchOfJob,
} from "../../shared/batches/progress-events";
import { BATCH_PROGRESS_EVENT } from "../../shared/webhooks/schema";
import { newDeliveryId, subscriptionsFor } from "./deliveries";

/** Records the progress of job `jobId`'s batch: the deliveries made and the stream's event, if any. */
export async function recordBatchProgress(
	db: D1Database,
	jobId: string,
	pace: PaceLimits,
	now = Date.now(),
): Promise<RecordedProgress> {
	const batch = await runningBatchOfJob(db, jobId);
	if (!batch) return { deliveries: [], event: null };
	const targets = await subscriptionsFor(db, BATCH_PROGRESS_EVENT, batch.key_prefix);
	return recordProgress(db, batch, targets, pace, () => newDeliveryId(now), now);
}
