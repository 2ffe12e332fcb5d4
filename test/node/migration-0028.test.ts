/**
 * Migration 0028 (model names and default prompts stored once, the newest-first and key indexes
 * without their tie-breakers) on a database that already holds rows: SQLite in Node with every
 * earlier migration applied, jobs made the way the code made them before it (texts in every row, a
 * caption version held by its job, a batch's models counted, events with their own ids and their
 * job's), then 0028. Every job, caption, history and event reads the same after it (an event keeps
 * its id and its position); a job finished since refers to a shared text instead of holding it,
 * and its event has the job's id; reads, versions, batch counts and event lookups see the same.
 */
import type { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { CURRENT_CAPTION_COLUMNS, CURRENT_CAPTION_JOIN, objectVersions } from "../../shared/captions/version-sql.ts";
import { jobText, SHARE_TEXTS_SQL, setJobText } from "../../shared/jobs/text-sql.ts";
import { eventJobId, isEventOfJob, jobEventId } from "../../shared/webhooks/job-event.ts";
import { applyMigrations, migrated } from "./support/sqlite-migrations.ts";

const MIGRATION = "0028_texts_once.sql";
const MODEL = "@cf/moondream/moondream3.1-9B-A2B";
const PROMPT = "Generate a caption for this image";

let seq = 0;
/** A queued job of `key` (in batch `batchId` if given). */
function queued(db: DatabaseSync, key: string, batchId: string | null = null): string {
	const id = `job_${String(++seq).padStart(26, "0")}`;
	const now = 1_795_773_600_000 + seq * 1000;
	db.prepare(
		`INSERT INTO jobs (id, source, batch_id, bucket, key, etag, size, status, attempts, created_at, updated_at, options_key)
		VALUES (?, ?, ?, 'images', ?, ?, 10, 'processing', 1, ?, ?, ?)`,
	).run(id, batchId ? "batch" : "notification", batchId, key, `e${seq}`, now, now, String(seq));
	return id;
}

/** The finish before 0028: the texts written into the row. */
function finishBefore(db: DatabaseSync, id: string, caption: string, model: string, prompt: string) {
	db.prepare(
		`UPDATE jobs SET status = 'succeeded', caption = ?, model = ?, prompt = ?, completed_at = updated_at + 10,
			updated_at = updated_at + 10 WHERE id = ?`,
	).run(caption, model, prompt, id);
}

/** The finish since (shared/jobs/store.ts): shared texts by reference. */
function finishAfter(db: DatabaseSync, id: string, caption: string, model: string, prompt: string) {
	db.prepare(
		`UPDATE jobs SET status = 'succeeded', caption = ?1, ${setJobText("model", "?2")}, ${setJobText("prompt", "?3")},
			completed_at = updated_at + 10, updated_at = updated_at + 10 WHERE id = ?4`,
	).run(caption, model, prompt, id);
}

/** Every job as the code reads it: before 0028 its columns, since through jobText. */
const jobsBefore = (db: DatabaseSync) => db.prepare("SELECT id, model, prompt FROM jobs ORDER BY id").all();
const jobsAfter = (db: DatabaseSync) =>
	db.prepare(`SELECT id, ${jobText("model")} AS model, ${jobText("prompt")} AS prompt FROM jobs ORDER BY id`).all();

/** Each object's current caption and its history, as the status Worker reads them. */
function captions(db: DatabaseSync) {
	const current = db
		.prepare(`SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN} WHERE c.bucket = 'images' ORDER BY c.key`)
		.all();
	const history = current.map((c) => db.prepare(objectVersions("?1", "?2")).all(c.bucket as string, c.key as string));
	return { current, history };
}

/** The same reads written the way 0027's code read them (no shared texts). */
function captionsBefore(db: DatabaseSync) {
	const current = db
		.prepare(
			`SELECT c.bucket, c.key, c.current AS version, coalesce(v.text, j.caption) AS text, coalesce(v.source, 'ai') AS source,
				CASE WHEN v.version IS NULL THEN j.id ELSE v.job_id END AS job_id,
				CASE WHEN v.version IS NULL THEN j.model ELSE v.model END AS model,
				CASE WHEN v.version IS NULL THEN j.prompt ELSE v.prompt END AS prompt,
				coalesce(v.etag, j.etag) AS etag, coalesce(v.created_at, j.completed_at) AS created_at, c.versions, c.updated_at
			FROM captions c LEFT JOIN caption_versions v ON v.bucket = c.bucket AND v.key = c.key AND v.version = c.current
			LEFT JOIN jobs j ON v.version IS NULL AND j.key = c.key AND j.bucket = c.bucket AND j.caption_version = c.current
			WHERE c.bucket = 'images' ORDER BY c.key`,
		)
		.all();
	const history = current.map((c) =>
		db
			.prepare(
				`SELECT bucket, key, version, text, source, job_id, model, prompt, etag, created_at FROM caption_versions
				WHERE bucket = ?1 AND key = ?2
				UNION ALL
				SELECT bucket, key, caption_version, caption, 'ai', id, model, prompt, etag, completed_at FROM jobs
				WHERE key = ?2 AND bucket = ?1 AND caption_version IS NOT NULL
				ORDER BY version DESC`,
			)
			.all(c.bucket as string, c.key as string),
	);
	return { current, history };
}

describe(`migrations/${MIGRATION} on existing rows`, () => {
	it("every job, caption and history reads the same after it; jobs finished since refer to shared texts", () => {
		const db = migrated((name) => name < MIGRATION);
		finishBefore(db, queued(db, "a.jpg"), "A cat.", MODEL, PROMPT);
		const b1 = queued(db, "b.jpg");
		finishBefore(db, b1, "A dog.", MODEL, "What breed?");
		const jobs = jobsBefore(db);
		const before = captionsBefore(db);
		expect(before.current).toHaveLength(2);

		applyMigrations(db, (name) => name === MIGRATION);

		expect(jobsAfter(db)).toEqual(jobs);
		expect(captions(db)).toEqual(before);
		// Existing rows are not rewritten: they keep their texts.
		expect(
			db.prepare("SELECT count(*) AS n FROM jobs WHERE model_id IS NOT NULL OR prompt_id IS NOT NULL").get(),
		).toEqual({ n: 0 });

		// Since: the consumer shares its model's name and the default prompt; a custom prompt stays in the row.
		db.prepare(SHARE_TEXTS_SQL).run(JSON.stringify([MODEL, PROMPT]));
		db.prepare(SHARE_TEXTS_SQL).run(JSON.stringify([MODEL]));
		expect(db.prepare("SELECT text FROM job_texts ORDER BY id").all()).toEqual([{ text: MODEL }, { text: PROMPT }]);
		const a2 = queued(db, "a.jpg");
		finishAfter(db, a2, "Two cats.", MODEL, PROMPT);
		const b2 = queued(db, "b.jpg");
		finishAfter(db, b2, "Two dogs.", MODEL, "How many?");
		expect(
			db.prepare("SELECT id, model, prompt, model_id, prompt_id FROM jobs WHERE id IN (?, ?) ORDER BY id").all(a2, b2),
		).toEqual([
			{ id: a2, model: null, prompt: null, model_id: 1, prompt_id: 2 },
			{ id: b2, model: null, prompt: "How many?", model_id: 1, prompt_id: null },
		]);
		const now = captions(db);
		expect(now.current).toMatchObject([
			{ key: "a.jpg", version: 2, text: "Two cats.", job_id: a2, model: MODEL, prompt: PROMPT },
			{ key: "b.jpg", version: 2, text: "Two dogs.", job_id: b2, model: MODEL, prompt: "How many?" },
		]);
		expect(jobsAfter(db).filter((j) => j.id === a2)).toEqual([{ id: a2, model: MODEL, prompt: PROMPT }]);

		// Retention deletes the jobs: their versions become rows with the texts, and read the same.
		db.exec("DELETE FROM jobs");
		expect(captions(db)).toEqual(now);
		expect(db.prepare("SELECT key, version, model, prompt FROM caption_versions ORDER BY key, version").all()).toEqual([
			{ key: "a.jpg", version: 1, model: MODEL, prompt: PROMPT },
			{ key: "a.jpg", version: 2, model: MODEL, prompt: PROMPT },
			{ key: "b.jpg", version: 1, model: MODEL, prompt: "What breed?" },
			{ key: "b.jpg", version: 2, model: MODEL, prompt: "How many?" },
		]);
	});

	it("a batch counts its jobs by model name, whether the job holds the name or refers to it", () => {
		const db = migrated((name) => name < MIGRATION);
		db.exec(`INSERT INTO batches (id, bucket, prefix, key_prefix, status, metadata, skip_captioned, created_at, updated_at)
			VALUES ('bat_1', 'images', 'x/', 'x/', 'running', '{}', 0, 1, 1)`);
		finishBefore(db, queued(db, "x/1.jpg", "bat_1"), "One.", MODEL, PROMPT);
		applyMigrations(db, (name) => name === MIGRATION);
		db.prepare(SHARE_TEXTS_SQL).run(JSON.stringify([MODEL]));
		finishAfter(db, queued(db, "x/2.jpg", "bat_1"), "Two.", MODEL, PROMPT);
		finishAfter(db, queued(db, "x/3.jpg", "bat_1"), "Three.", "@cf/llava-hf/llava-1.5-7b-hf", PROMPT);
		expect(JSON.parse(String(db.prepare("SELECT models FROM batches WHERE id = 'bat_1'").get()?.models))).toEqual({
			[MODEL]: 2,
			"@cf/llava-hf/llava-1.5-7b-hf": 1,
		});
	});

	it("events keep their ids, jobs and positions; a job's event since has the job's id, one per job either way", () => {
		const db = migrated((name) => name < MIGRATION);
		db.exec(`INSERT INTO webhook_events (id, job_id, batch_id, type, payload, created_at, dispatched_at) VALUES
			('evt_01OLDJOBEVENT0000000000000', 'job_01OLDJOB0000000000000000000', NULL, 'job.succeeded', NULL, 1, 2),
			('evt_01BATCHEVENT00000000000000', NULL, 'bat_1', 'batch.completed', NULL, 3, NULL),
			('evt_01CAPTIONEVENT000000000000', NULL, NULL, 'caption.updated', '{"data":{"key":"a.jpg"}}', 4, 5)`);
		const before = db.prepare("SELECT rowid AS seq, * FROM webhook_events ORDER BY rowid").all();

		applyMigrations(db, (name) => name === MIGRATION);

		const read = () =>
			db
				.prepare(
					`SELECT rowid AS seq, id, ${eventJobId()} AS job_id, batch_id, type, payload, created_at, dispatched_at
					FROM webhook_events ORDER BY rowid`,
				)
				.all();
		expect(read()).toEqual(before);

		// The finish's event since (shared/webhooks/outbox.ts): the job's id, no job_id.
		const job = "job_01NEWJOB0000000000000000000";
		const record = (jobId: string) =>
			db
				.prepare(
					`INSERT INTO webhook_events (id, type, created_at) SELECT ?1, 'job.succeeded', 6
					WHERE NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.job_id = ?2) ON CONFLICT (id) DO NOTHING`,
				)
				.run(jobEventId(jobId), jobId).changes;
		expect(record(job)).toBe(1);
		expect(record(job)).toBe(0);
		expect(record("job_01OLDJOB0000000000000000000")).toBe(0);
		expect(jobEventId(job)).toBe("evt_01NEWJOB0000000000000000000");
		expect(db.prepare("SELECT job_id FROM webhook_events WHERE id = ?").get(jobEventId(job))).toEqual({ job_id: null });
		expect(read().at(-1)).toMatchObject({ seq: 4, id: jobEventId(job), job_id: job, batch_id: null });
		const eventOf = (jobId: string) =>
			db.prepare(`SELECT id FROM webhook_events e WHERE ${isEventOfJob("e.", "?1")}`).all(jobId);
		expect(eventOf(job)).toEqual([{ id: jobEventId(job) }]);
		expect(eventOf("job_01OLDJOB0000000000000000000")).toEqual([{ id: "evt_01OLDJOBEVENT0000000000000" }]);
		// Still one event per job recorded the old way, and a job's event belongs to no batch.
		expect(() =>
			db.exec(`INSERT INTO webhook_events (id, job_id, type, created_at)
				VALUES ('evt_2', 'job_01OLDJOB0000000000000000000', 'job.failed', 7)`),
		).toThrow(/UNIQUE/);
		expect(() =>
			db.exec("INSERT INTO webhook_events (id, batch_id, type, created_at) VALUES ('evt_3', 'bat_1', 'job.failed', 7)"),
		).toThrow(/CHECK/);
		expect(() =>
			db.exec("INSERT INTO webhook_events (id, type, created_at) VALUES ('evt_4', 'batch.progress', 7)"),
		).toThrow(/CHECK/);
	});

	it("the list and key indexes hold no tie-breaker, and the list still reads newest first with ties by id", () => {
		const db = migrated(() => true);
		const columns = (index: string) =>
			db
				.prepare(`SELECT name FROM pragma_index_info('${index}') ORDER BY seqno`)
				.all()
				.map((r) => r.name);
		expect(columns("jobs_created")).toEqual(["created_at"]);
		expect(columns("jobs_key_created")).toEqual(["key"]);
		for (const id of ["job_b", "job_a", "job_c"]) {
			db.prepare(
				`INSERT INTO jobs (id, source, bucket, key, etag, status, created_at, updated_at)
				VALUES (?, 'api', 'images', 'k.jpg', 'e', 'queued', ?, 1)`,
			).run(id, id === "job_c" ? 2 : 1);
		}
		const page = db
			.prepare(
				"SELECT id FROM jobs INDEXED BY jobs_created WHERE created_at <= 9 ORDER BY created_at DESC, id DESC LIMIT 2",
			)
			.all();
		expect(page).toEqual([{ id: "job_c" }, { id: "job_b" }]);
	});
});
