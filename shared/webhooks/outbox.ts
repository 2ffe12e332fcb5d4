/**
 * The webhook outbox: the statement that makes a job terminal runs in one D1 batch (a transaction)
 * with the insert of its `webhook_events` row, so a finished job always has its event and a job
 * that did not finish (lost lease, already terminal) has none from this attempt. `job_id` is unique:
 * one event per job, however many consumers race to finish it.
 */
import { batchRows, parseRows } from "../d1-rows";
import { ulid } from "../ids";
import { JobRow } from "../jobs/schema";
import { EventRow } from "./schema";

export interface FinishedJob {
	job: JobRow;
	eventId: string;
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
	const [finished] = await db.batch([finish, recordEventStatement(db, jobId, eventId, now)]);
	const [job] = batchRows(finished, JobRow);
	return job ? { job, eventId } : null;
}

const UndispatchedEvent = EventRow.pick({ id: true, job_id: true });

/** Events that have no deliveries yet although they are older than `before` (lost or never sent). */
export async function findUndispatchedEvents(
	db: D1Database,
	before: number,
	since: number,
	limit = 100,
): Promise<{ id: string; job_id: string }[]> {
	return db
		.prepare(
			`SELECT id, job_id FROM webhook_events
			WHERE dispatched_at IS NULL AND created_at < ?1 AND created_at >= ?2
			ORDER BY created_at LIMIT ?3`,
		)
		.bind(before, since, limit)
		.all()
		.then(parseRows(UndispatchedEvent));
}
