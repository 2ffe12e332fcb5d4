/**
 * Migration 0027 (a job's caption kept once, no jobs_notification_once index, a delivery's first
 * attempt in its row) on a database that
 * already holds rows: SQLite in Node with every earlier migration applied, rows made the way the
 * code made them before it (a succeeded job's version by 0020's trigger, a person's version, a
 * version whose job retention deleted), then 0027. Every caption and every history reads the same
 * after it through the queries the status Worker runs; the versions whose jobs still exist become
 * theirs (no row); a delivery's attempt log reads the same with its first attempt in its row; and one
 * notification job per object version, one delivery per event and target, still hold.
 */
import type { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { CURRENT_CAPTION_COLUMNS, CURRENT_CAPTION_JOIN, objectVersions } from "../../shared/captions/version-sql.ts";
import { notificationJobOf } from "../../shared/jobs/notification-once.ts";
import { attemptsOf } from "../../shared/webhooks/attempts.ts";
import { deliveryOf } from "../../shared/webhooks/delivery-once.ts";
import { applyMigrations, migrated } from "./support/sqlite-migrations.ts";

const MIGRATION = "0027_caption_once.sql";

let seq = 0;
/** A notification job of `key` that succeeds with `caption` (the finish's UPDATE: the version trigger runs). */
function succeed(db: DatabaseSync, key: string, etag: string, caption: string, model: string, prompt: string | null) {
	const id = `job_${String(++seq).padStart(26, "0")}`;
	const now = 1_795_773_600_000 + seq * 1000;
	db.prepare(
		`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, created_at, updated_at, options_key)
		VALUES (?, 'notification', 'images', ?, ?, 10, 'processing', 1, ?, ?, ?)`,
	).run(id, key, etag, now, now, String(seq));
	db.prepare(
		`UPDATE jobs SET status = 'succeeded', caption = ?, model = ?, prompt = ?, completed_at = ?, updated_at = ?
		WHERE id = ?`,
	).run(caption, model, prompt, now + 10, now + 10, id);
	return id;
}

function human(db: DatabaseSync, key: string, etag: string, text: string) {
	const now = 1_795_773_700_000 + ++seq;
	db.prepare(
		`INSERT INTO captions (bucket, key, current, versions, updated_at) VALUES ('images', ?1, 1, 1, ?2)
		ON CONFLICT (bucket, key) DO UPDATE SET current = captions.versions + 1, versions = captions.versions + 1,
			updated_at = excluded.updated_at`,
	).run(key, now);
	db.prepare(
		`INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
		SELECT c.bucket, c.key, c.versions, ?2, 'human', NULL, NULL, NULL, ?3, ?4 FROM captions c
		WHERE c.bucket = 'images' AND c.key = ?1`,
	).run(key, text, etag, now);
}

/** What the status Worker read before 0027: the current version joined with its `captions` row, and the history. */
const BEFORE = {
	current: `SELECT v.bucket, v.key, v.version, v.text, v.source, v.job_id, v.model, v.prompt, v.etag, v.created_at,
		c.versions, c.updated_at
		FROM captions c JOIN caption_versions v ON v.bucket = c.bucket AND v.key = c.key AND v.version = c.current`,
	history: "SELECT * FROM caption_versions WHERE bucket = ?1 AND key = ?2 ORDER BY version DESC",
};
/** What it reads since (shared/captions/version-sql.ts). */
const AFTER = {
	current: `SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN}`,
	history: objectVersions("?1", "?2"),
};

/** Each object's current caption and its history. */
function reads(db: DatabaseSync, sql: { current: string; history: string }) {
	const current = db.prepare(`${sql.current} WHERE c.bucket = 'images' ORDER BY c.key`).all();
	const history = current.map((c) => db.prepare(sql.history).all(c.bucket as string, c.key as string));
	return { current, history };
}

/** The rows of `caption_versions`, and the versions jobs hold. */
const stored = (db: DatabaseSync) => ({
	rows: db.prepare("SELECT key, version, text, model, etag FROM caption_versions ORDER BY key, version").all(),
	held: db
		.prepare("SELECT key, caption_version AS version FROM jobs WHERE caption_version IS NOT NULL ORDER BY key")
		.all(),
});

describe(`migrations/${MIGRATION} on existing rows`, () => {
	it("every caption and history reads the same; versions of existing jobs become theirs; deleted jobs' stay rows", () => {
		const db = migrated((name) => name < MIGRATION);
		const prompt = "Generate a caption for this image";
		const a1 = succeed(db, "a.jpg", "e1", "A cat.", "@cf/moondream/moondream3.1-9B-A2B", prompt);
		succeed(db, "a.jpg", "e2", "A cat on a mat.", "@cf/llava-hf/llava-1.5-7b-hf", null);
		human(db, "a.jpg", "e2", "Tom, our cat.");
		const b1 = succeed(db, "b.jpg", "e3", "A dog.", "@cf/moondream/moondream3.1-9B-A2B", prompt);
		succeed(db, "c.jpg", "e4", "A bird.", "@cf/moondream/moondream3.1-9B-A2B", prompt);
		// Retention deleted these jobs before 0027: their versions hold the only copy.
		db.prepare("DELETE FROM jobs WHERE id IN (?, ?)").run(a1, b1);
		const before = reads(db, BEFORE);
		expect(before.current).toHaveLength(3);
		expect(before.history.flat()).toHaveLength(5);

		applyMigrations(db, (name) => name === MIGRATION);
		// Today's reads are made for every migration: those after it too.
		applyMigrations(db, (name) => name > MIGRATION);

		expect(reads(db, AFTER)).toEqual(before);
		expect(stored(db)).toEqual({
			rows: [
				{ key: "a.jpg", version: 1, text: "A cat.", model: "@cf/moondream/moondream3.1-9B-A2B", etag: "e1" },
				{ key: "a.jpg", version: 3, text: "Tom, our cat.", model: null, etag: "e2" },
				{ key: "b.jpg", version: 1, text: "A dog.", model: "@cf/moondream/moondream3.1-9B-A2B", etag: "e3" },
			],
			held: [
				{ key: "a.jpg", version: 2 },
				{ key: "c.jpg", version: 1 },
			],
		});

		// New jobs after it: a version held by its job, a row once the job is deleted.
		const c2 = succeed(db, "c.jpg", "e5", "Two birds.", "@cf/llava-hf/llava-1.5-7b-hf", null);
		const after = reads(db, AFTER);
		expect(after.current.at(-1)).toMatchObject({
			key: "c.jpg",
			version: 2,
			text: "Two birds.",
			job_id: c2,
			etag: "e5",
		});
		expect(stored(db).held).toEqual([
			{ key: "a.jpg", version: 2 },
			{ key: "c.jpg", version: 1 },
			{ key: "c.jpg", version: 2 },
		]);
		db.exec("DELETE FROM jobs");
		expect(reads(db, AFTER)).toEqual(after);
		expect(stored(db).rows).toHaveLength(6);
	});

	it("a delivery's first attempt moves into its row; its attempt log reads the same", () => {
		const db = migrated((name) => name < MIGRATION);
		db.exec(`INSERT INTO webhook_events (id, job_id, type, created_at, dispatched_at) VALUES ('evt_1', 'job_1', 'job.succeeded', 1, 2), ('evt_2', 'job_2', 'job.succeeded', 1, 2), ('evt_3', 'job_3', 'job.succeeded', 1, 2);
			INSERT INTO webhook_deliveries (id, event_id, url, status, attempts, last_status_code, created_at, updated_at, completed_at)
			VALUES ('msg_1', 'evt_1', 'https://example.com/a', 'succeeded', 2, 200, 2, 9, 9),
				('msg_2', 'evt_2', 'https://example.com/b', 'succeeded', 1, 204, 2, 5, 5),
				('msg_3', 'evt_3', 'https://example.com/c', 'pending', 0, NULL, 2, 2, NULL);
			INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, duration_ms, error)
			VALUES ('msg_1', 1, 3, 500, 40, 'The endpoint answered 500'), ('msg_1', 2, 8, 200, 12, NULL), ('msg_2', 1, 4, 204, 7, NULL);`);
		const log = () => db.prepare(attemptsOf("SELECT id FROM webhook_deliveries")).all();
		const before = db.prepare("SELECT * FROM webhook_attempts ORDER BY delivery_id, attempt").all();
		expect(before).toHaveLength(3);

		applyMigrations(db, (name) => name === MIGRATION);

		expect(log()).toEqual(before);
		expect(db.prepare("SELECT delivery_id, attempt FROM webhook_attempts").all()).toEqual([
			{ delivery_id: "msg_1", attempt: 2 },
		]);
	});

	it("a second notification job of one object version and options is refused, as by the unique index", () => {
		const db = migrated((name) => name <= MIGRATION);
		const insert = (id: string, optionsKey: string, where = "") =>
			db
				.prepare(
					`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, created_at, updated_at, options_key)
					SELECT ?1, 'notification', 'images', 'k.jpg', 'e1', 10, 'queued', 0, 1, 1, ?2 ${where}`,
				)
				.run(id, optionsKey).changes;
		expect(insert("job_1", "")).toBe(1);
		// What the code runs: nothing inserted, no error.
		expect(
			insert(
				"job_2",
				"",
				`WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE ${notificationJobOf("'images'", "'k.jpg'", "'e1'", "?2")})`,
			),
		).toBe(0);
		// Any other insert of a duplicate fails, as it did on jobs_notification_once.
		expect(() => insert("job_3", "")).toThrow(/jobs_notification_once/);
		// Other caption options, or an API job of the same version, are other rows.
		expect(insert("job_4", "opts")).toBe(1);
		db.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, created_at, updated_at, options_key)
			VALUES ('job_5', 'api', 'images', 'k.jpg', 'e1', 10, 'queued', 0, 1, 1, '')`,
		).run();
		expect(db.prepare("SELECT count(*) AS n FROM jobs").get()).toEqual({ n: 3 });
	});

	it("a second delivery of one event to one target is refused, as by the unique index", () => {
		const db = migrated((name) => name <= MIGRATION);
		const insert = (id: string, subscription: string | null, where = "") =>
			db
				.prepare(
					`INSERT INTO webhook_deliveries (id, event_id, subscription_id, url, status, created_at, updated_at)
					SELECT ?1, 'evt_1', ?2, CASE WHEN ?2 IS NULL THEN 'https://example.com/cb' END, 'pending', 1, 1 ${where}`,
				)
				.run(id, subscription).changes;
		expect(insert("msg_1", "wh_1")).toBe(1);
		expect(insert("msg_2", null)).toBe(1);
		// What the code runs: nothing inserted, no error.
		expect(insert("msg_3", "wh_1", `WHERE NOT EXISTS (${deliveryOf("'evt_1'", "?2")})`)).toBe(0);
		expect(insert("msg_4", null, `WHERE NOT EXISTS (${deliveryOf("'evt_1'", "?2")})`)).toBe(0);
		expect(() => insert("msg_5", "wh_1")).toThrow(/webhook_deliveries_once/);
		expect(() => insert("msg_6", null)).toThrow(/webhook_deliveries_once/);
		expect(insert("msg_7", "wh_2")).toBe(1);
	});
});
