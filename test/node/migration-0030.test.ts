/**
 * Migration 0030 (no lease index; a job's caption version set by its finish; batch counts per write) on a database that
 * already holds rows: SQLite in Node with every earlier migration applied, jobs queued, claimed,
 * abandoned and finished the way the code did before it, then 0030. Every row reads the same after
 * it; the stalled-job sweep finds the same jobs; and a job finished since, by the finish of this
 * code or by that of older code (deployed before the migration, or after it), gets the same caption
 * version and `captions` row as a finish before 0030 gave, in fewer rows written. A batch's counts
 * and models are still moved by the triggers for every writer but this code's batched claims and
 * finishes, which move them themselves (the bracket's `batches`).
 */
import type { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { captionVersionOf } from "../../shared/captions/version-sql.ts";
import { applyMigrations, migrated } from "./support/sqlite-migrations.ts";

const MIGRATION = "0030_fewer_rows.sql";
const T = 1_795_773_600_000;

let seq = 0;
/** A job of `key` in `status`; a processing one holds a lease until `leaseUntil`. */
function job(db: DatabaseSync, key: string, status: "queued" | "processing", leaseUntil: number | null = null): string {
	const id = `job_${String(++seq).padStart(26, "0")}`;
	const at = T + seq * 1000;
	db.prepare(
		`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, lease_token, lease_expires_at, created_at,
			updated_at, options_key)
		VALUES (?, 'notification', 'images', ?, ?, 10, ?, ?, ?, ?, ?, ?, ?)`,
	).run(
		id,
		key,
		`e${seq}`,
		status,
		status === "processing" ? 1 : 0,
		leaseUntil && "lease",
		leaseUntil,
		at,
		at,
		String(seq),
	);
	return id;
}

/** The finish before 0030: the trigger gives the version. */
const finishBefore = (db: DatabaseSync, id: string, caption: string) =>
	db
		.prepare(
			`UPDATE jobs SET status = 'succeeded', caption = ?1, completed_at = updated_at + 10, updated_at = updated_at + 10,
				lease_token = NULL, lease_expires_at = NULL WHERE id = ?2`,
		)
		.run(caption, id);

/** The finish since (shared/jobs/store.ts): its own UPDATE sets the version. */
const finishSince = (db: DatabaseSync, id: string, caption: string) =>
	db
		.prepare(
			`UPDATE jobs SET status = 'succeeded', caption = ?1, completed_at = updated_at + 10, updated_at = updated_at + 10,
				lease_token = NULL, lease_expires_at = NULL, caption_version = ${captionVersionOf("'succeeded'", "?1")}
			WHERE id = ?2`,
		)
		.run(caption, id);

const rows = (db: DatabaseSync) => ({
	jobs: db.prepare("SELECT * FROM jobs ORDER BY id").all(),
	captions: db.prepare("SELECT * FROM captions ORDER BY key").all(),
	versions: db.prepare("SELECT * FROM caption_versions ORDER BY key, version").all(),
});

/** The stalled-job sweep's predicate (workers/consumer/stalled-jobs.ts). */
const stalledIds = (db: DatabaseSync, now: number) =>
	db
		.prepare(
			`SELECT id FROM jobs WHERE status IN ('queued', 'processing') AND status <> 'succeeded'
			AND ((status = 'processing' AND (lease_expires_at < ?1 OR updated_at < ?3)) OR (status = 'queued' AND updated_at < ?2))
			ORDER BY id`,
		)
		.all(now, now - 600_000, 0)
		.map((r) => r.id);

/** Jobs as the code left them before 0030: queued (one long ago), claimed, abandoned, finished, a human caption. */
function seeded(): DatabaseSync {
	seq = 0;
	const db = migrated((name) => name < MIGRATION);
	job(db, "a.jpg", "queued");
	job(db, "b.jpg", "processing", T + 10_000_000);
	job(db, "c.jpg", "processing", T - 1);
	finishBefore(db, job(db, "d.jpg", "processing", T + 10_000_000), "A dog.");
	finishBefore(db, job(db, "d.jpg", "processing", T + 10_000_000), "A dog again.");
	db.prepare(
		"INSERT INTO caption_versions (bucket, key, version, text, source, etag, created_at) VALUES ('images', 'h.jpg', 1, 'By hand.', 'human', 'eh', ?1)",
	).run(T);
	db.prepare(
		"INSERT INTO captions (bucket, key, current, versions, updated_at) VALUES ('images', 'h.jpg', 1, 1, ?1)",
	).run(T);
	return db;
}

describe("migration 0030", () => {
	it("keeps every row, drops the lease and batch-results indexes, and the stalled-job sweep finds the same jobs", () => {
		const db = seeded();
		const before = rows(db);
		const now = T + 20 * 60_000;
		const stalledBefore = stalledIds(db, now);
		expect(stalledBefore).toHaveLength(2);
		applyMigrations(db, (name) => name === MIGRATION);
		expect(rows(db)).toEqual(before);
		expect(stalledIds(db, now)).toEqual(stalledBefore);
		const indexes = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'jobs'").all();
		expect(indexes.map((i) => i.name)).not.toContain("jobs_lease");
		expect(indexes.map((i) => i.name)).not.toContain("jobs_batch_completed");
	});

	it("a finish since, or one of older code, gives the version and captions a finish gave before", () => {
		const reference = seeded();
		const since = seeded();
		const older = seeded();
		applyMigrations(since, (name) => name === MIGRATION);
		applyMigrations(older, (name) => name === MIGRATION);
		// A third caption of d.jpg, the first AI one of h.jpg (whose human caption stays current), a new object.
		const finishes = [
			["d.jpg", "A dog, third."],
			["h.jpg", "A hand."],
			["n.jpg", "New."],
		] as const;
		for (const [key, caption] of finishes) {
			const n = seq;
			const [id] = [reference, since, older].map((db) => {
				seq = n;
				return job(db, key, "processing", T + 10_000_000);
			});
			const made = id ?? "";
			finishBefore(reference, made, caption);
			expect(finishSince(since, made, caption).changes).toBe(1);
			finishBefore(older, made, caption);
		}
		expect(rows(since)).toEqual(rows(reference));
		expect(rows(older)).toEqual(rows(reference));
		const versions = since.prepare("SELECT key, caption_version FROM jobs WHERE caption IS NOT NULL ORDER BY id").all();
		expect(versions.map((v) => [v.key, v.caption_version])).toEqual([
			["d.jpg", 1],
			["d.jpg", 2],
			["d.jpg", 3],
			["h.jpg", 2],
			["n.jpg", 1],
		]);
		expect(since.prepare("SELECT key, current, versions FROM captions ORDER BY key").all()).toEqual([
			{ key: "d.jpg", current: 3, versions: 3 },
			{ key: "h.jpg", current: 1, versions: 2 },
			{ key: "n.jpg", current: 1, versions: 1 },
		]);
	});

	it("a batch's counts, models and completion numbers: by the triggers unless the transaction's bracket says it moves them itself", () => {
		const db = seeded();
		applyMigrations(db, (name) => name === MIGRATION);
		db.prepare(
			`INSERT INTO batches (id, status, bucket, key_count, key_prefix, metadata, skip_captioned, total, queued, created_at,
				updated_at) VALUES ('bat_1', 'running', 'images', 2, 'b/', '{}', 1, 2, 2, ?1, ?1)`,
		).run(T);
		const ids = ["b/1.jpg", "b/2.jpg"].map((key) => {
			const id = job(db, key, "queued");
			db.prepare("UPDATE jobs SET batch_id = 'bat_1', source = 'batch' WHERE id = ?").run(id);
			return id;
		});
		const claim = (id: string) => db.prepare("UPDATE jobs SET status = 'processing', model = 'm' WHERE id = ?").run(id);
		const batch = () => db.prepare("SELECT queued, processing, models FROM batches WHERE id = 'bat_1'").get();
		// The bracket of code older than 0030 (no `batches`): the trigger counts the claim.
		db.exec("INSERT INTO stats_deferred (id) VALUES (1)");
		claim(ids[0] ?? "");
		db.exec("DELETE FROM stats_deferred");
		expect(batch()).toEqual({ queued: 1, processing: 1, models: "{}" });
		// This code's bracket: the transaction's own statement moves the counts, not the trigger.
		db.exec("INSERT INTO stats_deferred (id, batches) VALUES (1, 1)");
		claim(ids[1] ?? "");
		db.prepare("UPDATE jobs SET status = 'succeeded' WHERE id = ?").run(ids[0] ?? "");
		db.exec("DELETE FROM stats_deferred");
		expect(batch()).toEqual({ queued: 1, processing: 1, models: "{}" });
		// No bracket: the triggers count, models too.
		db.prepare("UPDATE jobs SET status = 'succeeded' WHERE id = ?").run(ids[1] ?? "");
		expect(batch()).toEqual({ queued: 1, processing: 0, models: '{"m":1}' });
		// Completion numbers likewise: the trigger numbered the job finished without this code's bracket.
		const seqs = db.prepare("SELECT batch_seq FROM jobs WHERE batch_id = 'bat_1' ORDER BY id").all();
		expect(seqs.map((r) => r.batch_seq)).toEqual([null, 1]);
		expect(db.prepare("SELECT finished_seq FROM batches WHERE id = 'bat_1'").get()).toEqual({ finished_seq: 1 });
	});
});
