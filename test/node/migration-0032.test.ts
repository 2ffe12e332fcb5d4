/**
 * Migration 0032 (the statistics' jobs by status in one row per scope) on a database that already
 * holds counts: SQLite in Node with every earlier migration applied, jobs in every status under two
 * scopes, then 0032. `job_counts` reads the same rows (scope, status, n) after it, now a view of
 * `scope_counts`; and every change the triggers count (an insert, a status change, a delete, a new
 * scope, with or without 0031's mark or the older bracket) leaves the same counts and completions as
 * on the schema before, in one counter row per scope.
 */
import type { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { STATS_MARK_CHANGED } from "../../shared/jobs/stats-mark.ts";
import { applyMigrations, migrated } from "./support/sqlite-migrations.ts";

const MIGRATION = "0032_scope_counts.sql";
const T = 1_795_773_600_000;
const STATUSES = ["queued", "processing", "succeeded", "failed", "cancelled"] as const;

let seq = 0;
function job(db: DatabaseSync, key: string, status: (typeof STATUSES)[number]): string {
	const id = `job_${String(++seq).padStart(26, "0")}`;
	const at = T + seq * 1000;
	const finished = !["queued", "processing"].includes(status);
	db.prepare(
		`INSERT INTO jobs (id, source, bucket, key, etag, status, attempts, created_at, updated_at, completed_at, options_key)
		VALUES (?, 'notification', 'images', ?, ?, ?, 0, ?, ?, ?, ?)`,
	).run(id, key, `e${seq}`, status, at, at, finished ? at + 10 : null, String(seq));
	return id;
}

/** Jobs of every status, half of them under the scope `s/` (a scoped key's prefix). */
function seeded(which: (name: string) => boolean): DatabaseSync {
	seq = 0;
	const db = migrated(which);
	db.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES ('s/', ?1)").run(T);
	for (let i = 0; i < 20; i++) job(db, `${i % 2 ? "s/" : "t/"}${i}.jpg`, STATUSES[i % 5] ?? "queued");
	return db;
}

const counts = (db: DatabaseSync) => ({
	counts: db.prepare("SELECT scope, status, n FROM job_counts ORDER BY scope, status").all(),
	completions: db.prepare("SELECT * FROM job_completions ORDER BY scope, bucket_seconds, start").all(),
});

/** The same changes, as every writer but the consumer's counted groups makes them (and as those mark them). */
function changes(db: DatabaseSync) {
	const update = (id: string, status: string, extra = "") =>
		db
			.prepare(`UPDATE jobs SET status = ?2, completed_at = CASE WHEN ?2 IN ('queued', 'processing') THEN NULL ELSE ?3 END
				${extra} WHERE id = ?1`)
			.run(id, status, T + 500_000);
	const a = job(db, "s/new-a.jpg", "queued");
	const b = job(db, "t/new-b.jpg", "queued");
	update(a, "processing");
	update(a, "succeeded");
	update(b, "processing");
	update(b, "failed");
	// Counted by its group (0031's mark): left alone here.
	update(job(db, "s/new-c.jpg", "queued"), "processing", `, ${STATS_MARK_CHANGED}`);
	// The bracket of older code.
	db.exec("INSERT INTO stats_deferred (id) VALUES (1)");
	update(job(db, "s/new-d.jpg", "queued"), "cancelled");
	db.exec("DELETE FROM stats_deferred");
	db.prepare("DELETE FROM jobs WHERE id = ?").run(a);
	// A new scope counts the jobs already under it.
	db.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES ('s/new', ?1)").run(T + 500_000);
}

describe("migration 0032", () => {
	it("keeps every count (job_counts reads the same rows, a view of one row per scope)", () => {
		const db = seeded((name) => name < MIGRATION);
		const before = counts(db);
		expect(before.counts).toHaveLength(10);
		expect(before.counts.filter((c) => c.scope === "s/").map((c) => c.n)).toEqual([2, 2, 2, 2, 2]);
		applyMigrations(db, (name) => name === MIGRATION);
		expect(counts(db)).toEqual(before);
		expect(db.prepare("SELECT type FROM sqlite_schema WHERE name = 'job_counts'").get()).toEqual({ type: "view" });
		expect(db.prepare("SELECT * FROM scope_counts ORDER BY scope").all()).toEqual([
			{ scope: "", queued: 4, processing: 4, succeeded: 4, failed: 4, cancelled: 4 },
			{ scope: "s/", queued: 2, processing: 2, succeeded: 2, failed: 2, cancelled: 2 },
		]);
	});

	it("the triggers count every change as before: inserts, status changes, deletes, a new scope, the mark and the bracket", () => {
		const reference = seeded((name) => name < MIGRATION);
		const since = seeded((name) => name <= MIGRATION);
		changes(reference);
		changes(since);
		const want = counts(reference);
		expect(counts(since)).toEqual(want);
		// The changes did move the counts (the comparison is not of two untouched tables).
		const service = Object.fromEntries(want.counts.filter((c) => c.scope === "").map((c) => [c.status, c.n]));
		expect(service).toEqual({ queued: 5, processing: 4, succeeded: 4, failed: 5, cancelled: 4 });
		expect(want.counts.filter((c) => c.scope === "s/new").map((c) => [c.status, c.n])).toEqual([
			["cancelled", 1],
			["failed", 0],
			["processing", 1],
			["queued", 0],
			["succeeded", 0],
		]);
	});
});
