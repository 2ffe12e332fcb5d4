/**
 * The webhook outbox: the statement that makes a job terminal runs in one D1 batch (a transaction)
 * with the insert of its `webhook_events` row, so a finished job always has its event and a job
 * that did not finish (lost lease, already terminal) has none from this attempt. `job_id` is unique:
 * one event per job, however many consumers race to finish it. The same transaction settles the
 * job's batch when this was its last unfinished job (shared/batches/settle.ts).
 */
import { z } from "zod";
import { type SettledBatch, settleBatchStatements, settledBatch } from "../batches/settle";
import { batchRows, parseRows } from "../d1-rows";
import { ulid } from "../ids";
import { JobRow } from "../jobs/schema";
import { EventRow } from "./schema";

export interface FinishedJob {
	job: JobRow;
	eventId: string;
	/** The job's batch, when finishing the job settled it. */
	batch: SettledBatch | null;
}

export const newEventId = (now?: number) => `evt_${ulid(now)}`;

/** Inserts the event of a job if the job is terminal and has none yet. */
export function recordEventStatement(db: D1Database, jobId: string, eventId: string, now: number): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO webhook_events (id, job_id, type, created_at)
			SELECT ?1, id, 'job.' || status, ?3 FROM jobs WHERE id = ?2 AND status IN ('succeeded', 'failed')
			ON CONFLICT (job_id) DO NOTHING`,
		)
		.bind(eventId, jobId, now);
}

/**
 * Runs `finish` (an UPDATE/INSERT … RETURNING * that makes job `jobId` terminal, or returns no row)
 * and the event insert in one transaction. Returns the finished row and its event id, or null.
 */
export async function finishWithEvent(
	db: D1Database,
	finish: D1PreparedStatement,
	jobId: string,
	now = Date.now(),
): Promise<FinishedJob | null> {
	const eventId = newEventId(now);
	const batchEventId = newEventId(now);
	const [finished, , settled] = await db.batch([
		finish,
		recordEventStatement(db, jobId, eventId, now),
		...settleBatchStatements(db, { jobId }, batchEventId, now),
	]);
	const [job] = batchRows(finished, JobRow);
	return job ? { job, eventId, batch: settledBatch(settled, batchEventId) } : null;
}

/** An event of a job or of a batch (the table's CHECK: exactly one of the two). */
const UndispatchedEvent = z.union([
	z.object({ id: EventRow.shape.id, job_id: z.string(), batch_id: z.null() }),
	z.object({ id: EventRow.shape.id, job_id: z.null(), batch_id: z.string() }),
]);
export type UndispatchedEvent = z.infer<typeof UndispatchedEvent>;

/** Events that have no deliveries yet although they are older than `before` (lost or never sent). */
export async function findUndispatchedEvents(
	db: D1Database,
	before: number,
	since: number,
	limit = 100,
): Promise<UndispatchedEvent[]> {
	return db
		.prepare(
			`SELECT id, job_id, batch_id FROM webhook_events
			WHERE dispatched_at IS NULL AND created_at < ?1 AND created_at >= ?2
			ORDER BY created_at LIMIT ?3`,
		)
		.bind(before, since, limit)
		.all()
		.then(parseRows(UndispatchedEvent));
}
