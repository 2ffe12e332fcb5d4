/**
 * A batch's end, exactly once. A batch is settled when it is `running` (every object has its job)
 * or `cancelled`, and none of its jobs is queued or processing: a conditional UPDATE then marks it
 * (`completed_at`, and `completed` unless cancelled) and returns the row, and its final event
 * (`batch.completed` or `batch.cancelled`, one per batch: a partial unique index) enters the webhook outbox in the same
 * transaction. These statements ride along with every change that can be a batch's last one: a job
 * finishing (shared/webhooks/outbox.ts), the last listing page, a cancel. Whichever commits the
 * last change settles the batch; the others match no row.
 */
import { batchRows } from "../d1-rows";
import type { BatchEventMessage } from "../queue/webhook-deliveries";
import { BatchRow } from "./schema";

/** The batch the statements look at: by id, or as the batch of a job (none for a job without one). */
export type BatchRef = { batchId: string } | { jobId: string };

const target = (ref: BatchRef) =>
	"batchId" in ref
		? { sql: "?1", param: ref.batchId }
		: { sql: "(SELECT batch_id FROM jobs WHERE id = ?1)", param: ref.jobId };

/** The settle UPDATE (returns the settled row, or none) and the outbox insert of its event. */
export function settleBatchStatements(
	db: D1Database,
	ref: BatchRef,
	eventId: string,
	now: number,
): [D1PreparedStatement, D1PreparedStatement] {
	const { sql, param } = target(ref);
	return [
		db
			.prepare(
				`UPDATE batches SET status = CASE status WHEN 'running' THEN 'completed' ELSE status END,
					completed_at = ?2, updated_at = ?2
				WHERE id = ${sql} AND completed_at IS NULL AND status IN ('running', 'cancelled')
					AND queued = 0 AND processing = 0
				RETURNING *`,
			)
			.bind(param, now),
		db
			.prepare(
				`INSERT INTO webhook_events (id, batch_id, type, created_at)
				SELECT ?3, id, 'batch.' || status, ?2 FROM batches WHERE id = ${sql} AND completed_at IS NOT NULL
				ON CONFLICT (batch_id) WHERE type IN ('batch.completed', 'batch.cancelled') DO NOTHING`,
			)
			.bind(param, now, eventId),
	];
}

/** A batch that settled in a transaction, with the id of its final event. */
export interface SettledBatch {
	batch: BatchRow;
	eventId: string;
}

/** The settled batch from the result of the settle UPDATE, if it settled. */
export function settledBatch(result: D1Result | undefined, eventId: string): SettledBatch | null {
	const [batch] = batchRows(result, BatchRow);
	return batch ? { batch, eventId } : null;
}

/** The `webhook-deliveries` message that dispatches a settled batch's event. */
export const batchEventMessage = (settled: SettledBatch): BatchEventMessage => ({
	kind: "batch-event",
	event_id: settled.eventId,
	batch_id: settled.batch.id,
});
