/**
 * `batch.progress` webhooks, opt-in: a subscription that lists the type gets the Batch JSON (with
 * its rate and ETA) of each running batch inside its prefix, at most once a minute per batch. The
 * job events of a batch's jobs drive it: after a job's event is dispatched, the subscriptions that
 * want the batch's progress claim their slot (shared/batches/progress-events.ts); if any is due, one
 * `batch.progress` event is recorded with its body fixed (the batch goes on changing), already
 * dispatched, with one delivery per due subscription, sent and retried like any other.
 */
import { z } from "zod";
import {
	BATCH_PROGRESS,
	claimProgress,
	type PaceLimits,
	progressOfJobBatch,
	WEBHOOK_PROGRESS_INTERVAL_MS,
} from "../../shared/batches/progress-events";
import { batchRows } from "../../shared/d1-rows";
import { newEventId } from "../../shared/webhooks/outbox";
import { insertDelivery, newDeliveryId, subscriptionsFor } from "./deliveries";

const DeliveryId = z.object({ id: z.string() });

/**
 * Records the progress of job `jobId`'s batch for the subscriptions it is due to; returns the ids
 * of the deliveries made (none: no batch, batch ended, nobody wants it, or nobody is due).
 */
export async function recordBatchProgress(
	db: D1Database,
	jobId: string,
	pace: PaceLimits,
	now = Date.now(),
): Promise<string[]> {
	const progress = await progressOfJobBatch(db, jobId, pace, now);
	if (!progress) return [];
	const { batch, body } = progress;
	const subscriptions = await subscriptionsFor(db, BATCH_PROGRESS, batch.key_prefix);
	const due = new Set(
		await claimProgress(
			db,
			batch.id,
			subscriptions.map((s) => s.id),
			WEBHOOK_PROGRESS_INTERVAL_MS,
			now,
		),
	);
	const targets = subscriptions.filter((s) => due.has(s.id));
	if (targets.length === 0) return [];
	const eventId = newEventId(now);
	const insert = insertDelivery(db);
	const [, ...results] = await db.batch([
		db
			.prepare(
				`INSERT INTO webhook_events (id, batch_id, type, payload, created_at, dispatched_at)
				VALUES (?1, ?2, ?3, ?4, ?5, ?5)`,
			)
			.bind(eventId, batch.id, BATCH_PROGRESS, body, now),
		...targets.map((t) => insert.bind(newDeliveryId(now), eventId, t.id, t.id, t.url, now, null)),
	]);
	return results.flatMap((result) => batchRows(result, DeliveryId).map((row) => row.id));
}
