/**
 * What retention archives and deletes, kind by kind: which rows have ended long enough ago (the
 * eligibility test, in SQL), how they are read for the archive (a row with its children), and the
 * statements that delete them. Every kind is walked in id order: ids are ULIDs, which sort like
 * their creation time, so a walk stops at the first id created after the cut-off (nothing created
 * later can have ended before it) and a part's rows are all of one day.
 */
import { z } from "zod";
import { BatchRow } from "../../shared/batches/schema";
import { batchRows, parseRows } from "../../shared/d1-rows";
import { ulid } from "../../shared/ids";
import { JobRow } from "../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../shared/jobs/texts";
import { attemptsOf } from "../../shared/webhooks/attempts";
import { eventJobId, isEventOfJob } from "../../shared/webhooks/job-event";
import { AttemptRow, DeliveryRow, EventRow } from "../../shared/webhooks/schema";
import type { ArchiveLine } from "./archive";
import type { ConsumerSettings } from "./config";

export const RETENTION_KINDS = ["jobs", "webhook_events", "batches"] as const;
export type RetentionKindName = (typeof RETENTION_KINDS)[number];

/** A row seen by a walk: whether it may go now. */
export const ScannedRow = z.object({ id: z.string(), created_at: z.number(), eligible: z.number() });
export type ScannedRow = z.infer<typeof ScannedRow>;

export interface RetentionKind {
	name: RetentionKindName;
	/** Rows at most this many days after they ended are kept. */
	days(settings: ConsumerSettings): number;
	/** Rows looked at per query (the walk's page). */
	pageSize: number;
	/** Rows per archive part (a batch carries up to 10,000 keys: one a part). */
	partRows: number;
	/** The walk's query (its plan is checked: every lookup goes through an index). */
	scanSql: string;
	/** The next `limit` rows after id `after` created before `cutoff`, each with its eligibility. */
	scan(db: D1Database, after: string, cutoff: number, limit: number): Promise<ScannedRow[]>;
	/** The rows with these ids, as archive lines, in id order. */
	read(db: D1Database, ids: string[]): Promise<ArchiveLine[]>;
	/**
	 * Deletes the rows; rows that started again stay. The first statement deletes the kind's own rows
	 * and returns their ids (RETURNING id), which count them: its `meta.changes` would count the rows
	 * its triggers change too (a job's caption version and scope counts).
	 */
	deletes(db: D1Database, ids: string[]): D1PreparedStatement[];
}

/** Ids (`job_…`, `evt_…`, `bat_…`) created before `cutoff` sort before this. */
const idBefore = (prefix: string, cutoff: number) => `${prefix}${ulid(Math.max(0, cutoff)).slice(0, 10)}`;

const IDS = "(SELECT value FROM json_each(?1))";
const json = (ids: string[]) => JSON.stringify(ids);

/** A walk's query: ?1 the last id seen, ?2 the first id created after the cut-off, ?3 the cut-off, ?4 the page. */
const scanSql = (table: string, eligible: string) =>
	`SELECT t.id, t.created_at, (${eligible}) AS eligible
	FROM (SELECT * FROM ${table} WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?4) t ORDER BY t.id`;

function scanner(prefix: string, sql: string): Pick<RetentionKind, "scanSql" | "scan"> {
	return {
		scanSql: sql,
		scan: (db, after, cutoff, limit) =>
			db.prepare(sql).bind(after, idBefore(prefix, cutoff), cutoff, limit).all().then(parseRows(ScannedRow)),
	};
}

/**
 * Finished jobs that a newer succeeded job of the same object supersedes (so an object's latest
 * job, and the job holding its current caption, stay), or whose object was deleted from the bucket
 * before the cut-off and not uploaded again since (deleted-objects.ts); whose event is dispatched
 * and has no delivery pending (every attempt rebuilds its payload from the job), whose batch is
 * gone and that no kept batch skipped to (a batch's export reads its jobs, and the earlier jobs
 * holding its skipped objects' captions).
 */
const jobs: RetentionKind = {
	name: "jobs",
	days: (s) => s.RETENTION_JOBS_DAYS,
	pageSize: 200,
	partRows: 200,
	...scanner(
		"job_",
		scanSql(
			"jobs",
			`t.status IN ('succeeded', 'failed', 'cancelled') AND t.completed_at < ?3
		AND (EXISTS (SELECT 1 FROM jobs n WHERE n.key = t.key AND n.bucket = t.bucket AND n.status = 'succeeded'
				AND (n.created_at > t.created_at OR (n.created_at = t.created_at AND n.id > t.id)))
			OR EXISTS (SELECT 1 FROM deleted_objects d WHERE d.bucket = t.bucket AND d.key = t.key AND d.deleted_at < ?3
				AND d.deleted_at >= (SELECT max(n.created_at) FROM jobs n WHERE n.key = t.key AND n.bucket = t.bucket)))
		AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE ${isEventOfJob("e.", "t.id")} AND (e.dispatched_at IS NULL
			OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')))
		AND (t.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = t.batch_id))
		AND NOT EXISTS (SELECT 1 FROM batch_skips s WHERE s.job_id = t.id)`,
		),
	),
	read: (db, ids) =>
		db
			.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id IN ${IDS} ORDER BY id`)
			.bind(json(ids))
			.all()
			.then(parseRows(JobRow)),
	deletes: (db, ids) => [
		db
			.prepare(`DELETE FROM jobs WHERE id IN ${IDS} AND status IN ('succeeded', 'failed', 'cancelled') RETURNING id`)
			.bind(json(ids)),
	],
};

/**
 * Dispatched events whose every delivery has ended (none pending, none redelivered since the
 * cut-off), but never the newest event: its rowid is the event stream's newest id, and SQLite gives
 * the next row the largest rowid plus one, so with it gone a new event would take an id a client
 * already holds (`Last-Event-ID`) and that client would skip it.
 */
const webhookEvents: RetentionKind = {
	name: "webhook_events",
	days: (s) => s.RETENTION_WEBHOOKS_DAYS,
	pageSize: 200,
	partRows: 200,
	...scanner(
		"evt_",
		scanSql(
			"webhook_events",
			`t.dispatched_at IS NOT NULL AND t.dispatched_at < ?3
		AND t.id <> (SELECT id FROM webhook_events WHERE rowid = (SELECT max(rowid) FROM webhook_events))
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = t.id
			AND (d.status = 'pending' OR d.completed_at IS NULL OR d.completed_at >= ?3))`,
		),
	),
	async read(db, ids) {
		const [events, deliveries, attempts] = await db.batch([
			db
				.prepare(
					`SELECT id, ${eventJobId()} AS job_id, batch_id, type, payload, created_at, dispatched_at
					FROM webhook_events WHERE id IN ${IDS} ORDER BY id`,
				)
				.bind(json(ids)),
			db.prepare(`SELECT * FROM webhook_deliveries WHERE event_id IN ${IDS} ORDER BY id`).bind(json(ids)),
			db.prepare(attemptsOf(`SELECT id FROM webhook_deliveries WHERE event_id IN ${IDS}`)).bind(json(ids)),
		]);
		const attemptRows = batchRows(attempts, AttemptRow);
		const deliveryLines = batchRows(deliveries, DeliveryRow).map((d) => ({
			...d,
			attempts_log: attemptRows.filter((a) => a.delivery_id === d.id),
		}));
		return batchRows(events, EventRow).map((e) => ({
			...e,
			deliveries: deliveryLines.filter((d) => d.event_id === e.id),
		}));
	},
	deletes: (db, ids) => {
		// The deliveries (and their attempts) of the events just deleted: an event redelivered meanwhile keeps all of its.
		const ended = `SELECT id FROM webhook_deliveries d WHERE d.event_id IN ${IDS}
			AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = d.event_id)`;
		return [
			db
				.prepare(
					`DELETE FROM webhook_events WHERE id IN ${IDS}
					AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id AND d.status = 'pending')
					RETURNING id`,
				)
				.bind(json(ids)),
			db.prepare(`DELETE FROM webhook_attempts WHERE delivery_id IN (${ended})`).bind(json(ids)),
			db.prepare(`DELETE FROM webhook_deliveries WHERE id IN (${ended})`).bind(json(ids)),
		];
	},
};

const BatchKeyRow = z.object({ batch_id: z.string(), seq: z.number(), key: z.string() });
const BatchSkipRow = z.object({ batch_id: z.string(), key: z.string(), job_id: z.string().nullable() });
const BatchMissingRow = z.object({ batch_id: z.string(), key: z.string(), page: z.number() });

const batchGone = (table: string) => `NOT EXISTS (SELECT 1 FROM batches b WHERE b.id = ${table}.batch_id)`;

/** Completed or cancelled batches whose final event is delivered, with their key lists, skips and missing keys. */
const batches: RetentionKind = {
	name: "batches",
	days: (s) => s.RETENTION_BATCHES_DAYS,
	pageSize: 50,
	partRows: 1,
	...scanner(
		"bat_",
		scanSql(
			"batches",
			`t.status IN ('completed', 'cancelled') AND t.completed_at IS NOT NULL AND t.completed_at < ?3
		AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.batch_id = t.id AND (e.dispatched_at IS NULL
			OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')))`,
		),
	),
	async read(db, ids) {
		const [rows, keys, skips, missing] = await db.batch([
			db.prepare(`SELECT * FROM batches WHERE id IN ${IDS} ORDER BY id`).bind(json(ids)),
			db.prepare(`SELECT * FROM batch_keys WHERE batch_id IN ${IDS} ORDER BY batch_id, seq`).bind(json(ids)),
			db.prepare(`SELECT * FROM batch_skips WHERE batch_id IN ${IDS} ORDER BY batch_id, key`).bind(json(ids)),
			db.prepare(`SELECT * FROM batch_missing WHERE batch_id IN ${IDS} ORDER BY batch_id, key`).bind(json(ids)),
		]);
		const missingRows = batchRows(missing, BatchMissingRow);
		const keyRows = batchRows(keys, BatchKeyRow);
		const skipRows = batchRows(skips, BatchSkipRow);
		return batchRows(rows, BatchRow).map((b) => ({
			...b,
			keys: keyRows.filter((k) => k.batch_id === b.id).map((k) => k.key),
			skips: skipRows.filter((s) => s.batch_id === b.id).map(({ key, job_id }) => ({ key, job_id })),
			missing: missingRows.filter((m) => m.batch_id === b.id).map((m) => m.key),
		}));
	},
	deletes: (db, ids) => {
		const gone = `SELECT id FROM batches WHERE id IN ${IDS} AND status IN ('completed', 'cancelled')`;
		return [
			db.prepare(`DELETE FROM batches WHERE id IN (${gone}) RETURNING id`).bind(json(ids)),
			db.prepare(`DELETE FROM batch_keys WHERE batch_id IN ${IDS} AND ${batchGone("batch_keys")}`).bind(json(ids)),
			db.prepare(`DELETE FROM batch_skips WHERE batch_id IN ${IDS} AND ${batchGone("batch_skips")}`).bind(json(ids)),
			db
				.prepare(`DELETE FROM batch_missing WHERE batch_id IN ${IDS} AND ${batchGone("batch_missing")}`)
				.bind(json(ids)),
			// When its progress last went out: worth nothing once the batch is gone.
			db
				.prepare(`DELETE FROM batch_progress_marks WHERE batch_id IN ${IDS} AND ${batchGone("batch_progress_marks")}`)
				.bind(json(ids)),
		];
	},
};

export const retentionKinds: Record<RetentionKindName, RetentionKind> = {
	jobs,
	webhook_events: webhookEvents,
	batches,
};
