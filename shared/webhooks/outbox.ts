/**
 * The webhook outbox: the statement that makes a job terminal runs in one D1 batch (a transaction)
 * with the insert of its `webhook_events` row, so a finished job always has its event and a job
 * that did not finish (lost lease, already terminal) has none from this attempt. A job's event is
 * keyed by its job (shared/webhooks/job-event.ts): one event per job, however many consumers race
 * to finish it. The same transaction settles the
 * job's batch when this was its last unfinished job (shared/batches/settle.ts).
 */
import { z } from "zod";
import { type SettledBatch, settleBatchStatements, settledBatch } from "../batches/settle";
import { batchRows, parseRows } from "../d1-rows";
import { ulid } from "../ids";
import { JobRow } from "../jobs/schema";
import { eventJobId, jobEventId } from "./job-event";
import { EventRow } from "./schema";

export interface FinishedJob {
	job: JobRow;
	eventId: string;
	/** The event was recorded dispatched: it had no target to go to (`EventDispatch`). */
	dispatched: boolean;
	/** The job's batch, when finishing the job settled it. */
	batch: SettledBatch | null;
}

/**
 * When a job's event is recorded: `undispatched` (the webhooks Worker fans it out and marks it
 * dispatched; the outbox sweep re-sends it until then), or `dispatched-without-target`: when no
 * target could take it at that moment (no callback URL, no active subscription whose prefix holds
 * the job's key), it is recorded dispatched with no deliveries, which is what its fan-out would
 * have found. That saves the outbox's index entry and the fan-out's UPDATE (two rows written); the
 * event of a job outside a batch needs no message either (a batch job's still goes to the webhooks
 * Worker, which records its batch's progress: workers/webhooks/fan-out.ts). A subscription made in
 * the moment between the finish and the fan-out does not get such an event.
 */
export type EventDispatch = "undispatched" | "dispatched-without-target";

/** Whether job `j` has no target a fan-out could find now (see EventDispatch): its event's dispatched_at, or NULL. */
const DISPATCHED_WITHOUT_TARGET = (now: string) => `CASE WHEN j.callback_url IS NULL
	AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.status = 'active'
		AND (s.prefix IS NULL OR substr(j.key, 1, length(s.prefix)) = s.prefix)) THEN ${now} END`;

export const newEventId = (now?: number) => `evt_${ulid(now)}`;

/**
 * Inserts the event of a job (its id the job's: jobEventId) if the job is terminal and has none
 * yet; RETURNING gives its `dispatched_at` (see EventDispatch).
 */
export function recordEventStatement(
	db: D1Database,
	jobId: string,
	now: number,
	dispatch: EventDispatch = "undispatched",
): D1PreparedStatement {
	const dispatchedAt = dispatch === "undispatched" ? "NULL" : DISPATCHED_WITHOUT_TARGET("?3");
	return db
		.prepare(
			`INSERT INTO webhook_events (id, type, created_at, dispatched_at)
			SELECT ?1, 'job.' || j.status, ?3, ${dispatchedAt} FROM jobs j WHERE j.id = ?2 AND j.status IN ('succeeded', 'failed')
				AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = ?2)
			ON CONFLICT (id) DO NOTHING
			RETURNING dispatched_at`,
		)
		.bind(jobEventId(jobId), jobId, now);
}

const RecordedEvent = z.object({ dispatched_at: z.number().int().nullable() });

/** The statements of one job's finish (see `finishWithEvent`), and how to read their results. */
export interface FinishWrite {
	/** The finish and its event. */
	statements: D1PreparedStatement[];
	/**
	 * The settling of the job's batch, if this finish was its last: run after the `statements` of
	 * every finish of the transaction, so that the batch's final event comes after its jobs' events
	 * (the stream's order is the events' insertion order).
	 */
	settle: D1PreparedStatement[];
	/** The finished job from the results of `statements` and of `settle`, each in order, or null when it did not finish. */
	read(results: D1Result[], settled: D1Result[]): FinishedJob | null;
}

/** `finish` with its event and its batch's settling, to run in a transaction (alone or with others). */
export function finishWrite(
	db: D1Database,
	finish: D1PreparedStatement,
	jobId: string,
	now: number,
	dispatch: EventDispatch = "undispatched",
): FinishWrite {
	const eventId = jobEventId(jobId);
	const batchEventId = newEventId(now);
	return {
		statements: [finish, recordEventStatement(db, jobId, now, dispatch)],
		settle: settleBatchStatements(db, { jobId }, batchEventId, now),
		read: ([finished, recorded], [settled]) => {
			const [job] = batchRows(finished, JobRow);
			const [event] = batchRows(recorded, RecordedEvent);
			const dispatched = event !== undefined && event.dispatched_at !== null;
			return job ? { job, eventId, dispatched, batch: settledBatch(settled, batchEventId) } : null;
		},
	};
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
	const write = finishWrite(db, finish, jobId, now);
	const results = await db.batch([...write.statements, ...write.settle]);
	return write.read(results.slice(0, write.statements.length), results.slice(write.statements.length));
}

/** An event of a job, of a batch, or of a caption (the table's CHECK: at most one of the two ids). */
const UndispatchedEvent = z.union([
	z.object({ id: EventRow.shape.id, job_id: z.string(), batch_id: z.null() }),
	z.object({ id: EventRow.shape.id, job_id: z.null(), batch_id: z.string() }),
	z.object({ id: EventRow.shape.id, job_id: z.null(), batch_id: z.null() }),
]);
export type UndispatchedEvent = z.infer<typeof UndispatchedEvent>;
const UndispatchedEventAt = z.intersection(UndispatchedEvent, z.object({ created_at: z.number().int() }));

/** Where a sweep through the outbox stands: the last event it read (events come in this order). */
export interface OutboxCursor {
	created_at: number;
	id: string;
}

/**
 * Events that have no deliveries yet although they are older than `before` (lost or never sent),
 * oldest first, after `after`: a sweep pages through the whole backlog, however old (there is no
 * horizon: an event is never abandoned).
 */
export async function findUndispatchedEvents(
	db: D1Database,
	before: number,
	after: OutboxCursor | null,
	limit = 100,
): Promise<(UndispatchedEvent & OutboxCursor)[]> {
	return db
		.prepare(
			`SELECT id, ${eventJobId()} AS job_id, batch_id, created_at FROM webhook_events
			WHERE dispatched_at IS NULL AND created_at < ?1 AND (created_at, id) > (?2, ?3)
			ORDER BY created_at, id LIMIT ?4`,
		)
		.bind(before, after?.created_at ?? -1, after?.id ?? "", limit)
		.all()
		.then(parseRows(UndispatchedEventAt));
}

const Cursor = z.object({ created_at: z.number().int(), id: z.string() });

/** Where the last outbox sweep that ran out of time stopped (null: start from the oldest). */
export async function readOutboxCursor(db: D1Database): Promise<OutboxCursor | null> {
	return db
		.prepare("SELECT created_at, id FROM sweep_cursors WHERE name = 'outbox'")
		.first()
		.then((row) => (row === null ? null : Cursor.parse(row)));
}

/** Saves where a sweep stopped, or (null) forgets it once a sweep reached the end of the backlog. */
export async function saveOutboxCursor(db: D1Database, cursor: OutboxCursor | null, now: number): Promise<void> {
	const statement = cursor
		? db
				.prepare(
					`INSERT INTO sweep_cursors (name, created_at, id, updated_at) VALUES ('outbox', ?1, ?2, ?3)
					ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at, id = excluded.id, updated_at = excluded.updated_at`,
				)
				.bind(cursor.created_at, cursor.id, now)
		: db.prepare("DELETE FROM sweep_cursors WHERE name = 'outbox'");
	await statement.run();
}

/** At most this many undispatched events are counted by `GET /v1/stats` (the count stays bounded). */
export const OUTBOX_COUNT_CAP = 10_000;

export const OutboxBacklog = z
	.object({
		undispatched: z
			.number()
			.int()
			.meta({
				description: `Events (of finished jobs and settled batches) not yet turned into deliveries, counted up to ${OUTBOX_COUNT_CAP}.`,
			}),
		capped: z.boolean().meta({ description: `Whether there are more than ${OUTBOX_COUNT_CAP}.` }),
		oldest_age_seconds: z
			.number()
			.int()
			.nullable()
			.meta({ description: "Age of the oldest undispatched event; null when there is none." }),
	})
	.meta({ id: "OutboxBacklog" });
export type OutboxBacklog = z.infer<typeof OutboxBacklog>;

const BacklogRow = z.object({ n: z.number().int(), oldest: z.number().int().nullable() });

/**
 * The outbox's backlog, for `GET /v1/stats`: normally empty or a few seconds old (events are
 * dispatched as jobs finish); a growing age means dispatch is failing and the sweeper is behind.
 * Reads at most OUTBOX_COUNT_CAP + 1 entries of the partial index of undispatched events.
 */
export async function readOutboxBacklog(db: D1Database, now = Date.now()): Promise<OutboxBacklog> {
	const row = await db
		.prepare(
			`SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM webhook_events WHERE dispatched_at IS NULL LIMIT ?1)) AS n,
				(SELECT MIN(created_at) FROM webhook_events WHERE dispatched_at IS NULL) AS oldest`,
		)
		.bind(OUTBOX_COUNT_CAP + 1)
		.first()
		.then((r) => BacklogRow.parse(r));
	return {
		undispatched: Math.min(row.n, OUTBOX_COUNT_CAP),
		capped: row.n > OUTBOX_COUNT_CAP,
		oldest_age_seconds: row.oldest === null ? null : Math.max(0, Math.floor((now - row.oldest) / 1000)),
	};
}
