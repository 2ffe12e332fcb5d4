/**
 * Migration 0031 (a claim moves no index entry; the consumer's counted claims and finishes mark
 * their rows instead of holding the bracket row) on a database that already holds rows: SQLite in
 * Node with every earlier migration applied, jobs in every status made the way the code made them
 * before it, then 0031. Every row reads the same after it (the new mark is NULL), the schema is
 * 0030's but for the two indexes, the column and the triggers' new condition, and the stalled-job
 * sweep and every status list find the same jobs through the new indexes. Then the triggers: a
 * statement that changes a job's mark is left to count its change itself, any other is counted,
 * and the bracket of code older than 0031 is still honoured, so the statistics and a batch's counts
 * stay exact whichever code writes.
 */
import type { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { STATS_MARK_CHANGED, STATS_MARK_INSERTED } from "../../shared/jobs/stats-mark.ts";
import { applyMigrations, migrated } from "./support/sqlite-migrations.ts";

const MIGRATION = "0031_claims_unindexed.sql";
const T = 1_795_773_600_000;

type Status = "queued" | "processing" | "succeeded" | "failed" | "cancelled";

let seq = 0;
/** A job of `key` in `status` (a finished one with its completion time), in batch `batchId` if given. */
function job(db: DatabaseSync, key: string, status: Status, batchId: string | null = null): string {
	const id = `job_${String(++seq).padStart(26, "0")}`;
	const at = T + seq * 1000;
	const finished = ["succeeded", "failed", "cancelled"].includes(status);
	db.prepare(
		`INSERT INTO jobs (id, source, batch_id, bucket, key, etag, size, status, attempts, lease_token, lease_expires_at,
			created_at, updated_at, completed_at, options_key)
		VALUES (?, ?, ?, 'images', ?, ?, 10, ?, ?, ?, ?, ?, ?, ?, ?)`,
	).run(
		id,
		batchId ? "batch" : "notification",
		batchId,
		key,
		`e${seq}`,
		status,
		status === "queued" ? 0 : 1,
		status === "processing" ? "lease" : null,
		status === "processing" ? (seq % 2 === 0 ? T - 1 : T + 10_000_000) : null,
		at,
		at,
		finished ? at + 10 : null,
		String(seq),
	);
	return id;
}

/** Jobs of every status, some of them old enough to be stalled. */
function seeded(): DatabaseSync {
	seq = 0;
	const db = migrated((name) => name < MIGRATION);
	const statuses: Status[] = ["queued", "processing", "succeeded", "failed", "cancelled"];
	for (let i = 0; i < 20; i++) job(db, `k${i}.jpg`, statuses[i % statuses.length] ?? "queued");
	return db;
}

const jobRows = (db: DatabaseSync) =>
	db
		.prepare("SELECT * FROM jobs ORDER BY id")
		.all()
		.map(({ stats_mark, ...row }) => row);

/** The stalled-job sweep's page before 0031 (workers/consumer/stalled-jobs.ts then) and since. */
const STALLED_TAIL = `AND ((status = 'processing' AND (lease_expires_at < ?1 OR updated_at < ?3)) OR (status = 'queued' AND updated_at < ?2))
	AND id > ?4 ORDER BY id LIMIT ?5`;
const stalledBefore = (db: DatabaseSync, now: number) =>
	db
		.prepare(
			`SELECT id FROM jobs INDEXED BY jobs_status_created WHERE status IN ('queued', 'processing') AND status <> 'succeeded'
			${STALLED_TAIL}`,
		)
		.all(now, now - 600_000, 0, "", 100)
		.map((r) => r.id);
const stalledSince = (db: DatabaseSync, now: number) =>
	db
		.prepare(
			`SELECT id FROM jobs INDEXED BY jobs_unfinished WHERE completed_at IS NULL AND status IN ('queued', 'processing')
			${STALLED_TAIL}`,
		)
		.all(now, now - 600_000, 0, "", 100)
		.map((r) => r.id);

/** A status list newest first, through the index that serves it (workers/status/jobs/list.ts then and since). */
const listBefore = (db: DatabaseSync, status: Status) =>
	db
		.prepare(
			`SELECT id FROM jobs INDEXED BY jobs_status_created WHERE status = ?1 AND status <> 'succeeded'
			ORDER BY created_at DESC, id DESC`,
		)
		.all(status)
		.map((r) => r.id);
const listSince = (db: DatabaseSync, status: Status) =>
	(status === "queued" || status === "processing"
		? db
				.prepare(
					`SELECT id FROM (SELECT * FROM jobs INDEXED BY jobs_unfinished WHERE completed_at IS NULL
						ORDER BY created_at DESC, id DESC) WHERE status = ?1`,
				)
				.all(status)
		: db
				.prepare(
					`SELECT id FROM jobs INDEXED BY jobs_status_created WHERE status = ?1 AND status IN ('failed', 'cancelled')
					ORDER BY created_at DESC, id DESC`,
				)
				.all(status)
	).map((r) => r.id);

/** The schema of `jobs` (its columns, indexes and triggers), as SQLite holds it. */
const schema = (db: DatabaseSync) =>
	db
		.prepare("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'jobs' ORDER BY type, name")
		.all()
		.map((r) => ({ type: String(r.type), name: String(r.name), sql: String(r.sql) }));

/** The counts the statistics hold for the whole service, and those of batch `bat_1`. */
const counts = (db: DatabaseSync) => ({
	service: Object.fromEntries(
		db
			.prepare("SELECT status, n FROM job_counts WHERE scope = '' AND n <> 0 ORDER BY status")
			.all()
			.map((r) => [r.status, r.n]),
	),
	completions: db.prepare("SELECT coalesce(sum(completed), 0) AS n FROM job_completions WHERE scope = ''").get()?.n,
	batch: db
		.prepare("SELECT queued, processing, succeeded, failed, models, finished_seq FROM batches WHERE id = 'bat_1'")
		.get(),
});

describe("migration 0031", () => {
	it("keeps every row; the schema is 0030's but for the two indexes, the mark and the triggers' condition; the sweep and the status lists find the same jobs", () => {
		const db = seeded();
		const before = jobRows(db);
		const schemaBefore = schema(db);
		const now = T + 60 * 60_000;
		const stalled = stalledBefore(db, now);
		expect(stalled.length).toBeGreaterThan(4);
		const statuses: Status[] = ["queued", "processing", "failed", "cancelled"];
		const lists = statuses.map((s) => listBefore(db, s));
		expect(lists.every((l) => l.length === 4)).toBe(true);

		applyMigrations(db, (name) => name === MIGRATION);
		expect(jobRows(db)).toEqual(before);
		expect(db.prepare("SELECT count(*) AS n FROM jobs WHERE stats_mark IS NOT NULL").get()?.n).toBe(0);
		expect(stalledSince(db, now)).toEqual(stalled);
		expect(statuses.map((s) => listSince(db, s))).toEqual(lists);

		// The schema: the same indexes and triggers, with only these differences.
		const after = schema(db);
		const named = (rows: typeof after) => new Map(rows.map((r) => [`${r.type} ${r.name}`, r.sql]));
		const [was, is] = [named(schemaBefore), named(after)];
		expect([...is.keys()].sort()).toEqual([...was.keys(), "index jobs_unfinished"].sort());
		const changed = [...is.keys()].filter((k) => is.get(k) !== was.get(k)).sort();
		expect(changed).toEqual([
			"index jobs_status_created",
			"index jobs_unfinished",
			"table jobs",
			"trigger jobs_batch_counts",
			"trigger jobs_batch_models",
			"trigger jobs_batch_seq_update",
			"trigger jobs_stats_insert",
			"trigger jobs_stats_update",
		]);
		expect(is.get("table jobs")).toBe(`${was.get("table jobs")?.slice(0, -1)}, stats_mark INTEGER)`);
		// Each trigger changed only by the mark's condition in its WHEN.
		for (const name of changed.filter((k) => k.startsWith("trigger"))) {
			const strip = (sql: string | null | undefined) =>
				(sql ?? "")
					.replace(/\s+/g, " ")
					.replace(/CREATE TRIGGER \w+/, "")
					.replace(/\bnew\.stats_mark IS NULL AND |\bold\.stats_mark IS new\.stats_mark AND /, "")
					.trim();
			expect(strip(is.get(name)), name).toBe(strip(was.get(name)));
		}
		expect(is.get("index jobs_unfinished")).toBe(
			"CREATE INDEX jobs_unfinished ON jobs (created_at, id) WHERE completed_at IS NULL",
		);
		expect(is.get("index jobs_status_created")).toBe(
			"CREATE INDEX jobs_status_created ON jobs (status, created_at, id) WHERE status IN ('failed', 'cancelled')",
		);
	});

	it("a change by a statement that changes the mark is left to it; any other is counted, and the bracket of older code is still honoured", () => {
		const db = seeded();
		applyMigrations(db, (name) => name === MIGRATION);
		db.prepare(
			`INSERT INTO batches (id, status, bucket, key_count, key_prefix, metadata, skip_captioned, total, queued, created_at,
				updated_at) VALUES ('bat_1', 'running', 'images', 4, 'b/', '{}', 1, 4, 4, ?1, ?1)`,
		).run(T);
		const ids = ["b/1.jpg", "b/2.jpg", "b/3.jpg", "b/4.jpg"].map((key) => job(db, key, "queued", "bat_1"));
		const [a = "", b = "", c = "", d = ""] = ids;
		const start = counts(db);
		expect(start.service).toEqual({ cancelled: 4, failed: 4, processing: 4, queued: 8, succeeded: 4 });

		// The consumer's claims and finishes counted by their group: the row's mark changed (an insert
		// sets it), and neither the statistics nor the batch move here (the group's statements would).
		const claim = (id: string, marked: boolean) =>
			db
				.prepare(
					`UPDATE jobs SET status = 'processing', lease_token = 'l'${marked ? `, ${STATS_MARK_CHANGED}` : ""} WHERE id = ?`,
				)
				.run(id);
		const finish = (id: string, marked: boolean) =>
			db
				.prepare(
					`UPDATE jobs SET status = 'succeeded', model = 'm', completed_at = ?2, updated_at = ?2, lease_token = NULL
						${marked ? `, ${STATS_MARK_CHANGED}` : ""} WHERE id = ?1`,
				)
				.run(id, T + 5000);
		claim(a, true);
		finish(a, true);
		db.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, status, attempts, created_at, updated_at, options_key, stats_mark)
			VALUES ('job_marked', 'notification', 'images', 'n.jpg', 'en', 'processing', 1, ?1, ?1, '', ${STATS_MARK_INSERTED})`,
		).run(T);
		expect(counts(db)).toEqual(start);
		expect(db.prepare("SELECT stats_mark, batch_seq FROM jobs WHERE id = ?").get(a)).toEqual({
			stats_mark: 0,
			batch_seq: null,
		});

		// Any other writer (a claim or finish alone, the sweeper, the API) leaves the mark: counted here.
		claim(b, false);
		finish(b, false);
		// A job counted by its group at its claim (the group's own statement, not run here, would have
		// moved it from queued to processing), finished alone (its group's transaction failed): the
		// finish is counted here, the claim was not.
		claim(c, true);
		finish(c, false);
		expect(counts(db)).toEqual({
			service: { cancelled: 4, failed: 4, processing: 3, queued: 7, succeeded: 6 },
			completions: Number(start.completions) + 4,
			batch: { queued: 3, processing: -1, succeeded: 2, failed: 0, models: '{"m":2}', finished_seq: 2 },
		});
		expect(db.prepare("SELECT batch_seq FROM jobs WHERE id IN (?, ?) ORDER BY id").all(b, c)).toEqual([
			{ batch_seq: 1 },
			{ batch_seq: 2 },
		]);

		// Code older than 0031 on this schema: its bracket row still keeps the triggers off, and
		// without `batches` the batch's triggers still count.
		db.exec("INSERT INTO stats_deferred (id) VALUES (1)");
		claim(d, false);
		db.exec("DELETE FROM stats_deferred");
		const now = counts(db);
		expect(now.service).toEqual({ cancelled: 4, failed: 4, processing: 3, queued: 7, succeeded: 6 });
		expect(now.batch).toMatchObject({ queued: 2, processing: 0 });
		db.exec("INSERT INTO stats_deferred (id, batches) VALUES (1, 1)");
		finish(d, false);
		db.exec("DELETE FROM stats_deferred");
		expect(counts(db)).toEqual(now);
	});
});
