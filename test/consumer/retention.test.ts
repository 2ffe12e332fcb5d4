/**
 * Retention: rows past their time are archived to R2 and then deleted; rows inside it, an
 * object's latest job and its current caption, and unfinished work stay; the stats counters stay
 * equal to the rows; a run stopped between the archive write and the delete is finished by the
 * next one with every deleted row in the archive exactly once; two runs at once do not both work.
 * Rows are made weeks old and the sweep runs at the real time, so other files' fresh rows are
 * never eligible; every assertion counts this file's rows only.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { batchRows } from "../../shared/d1-rows";
import { ulid } from "../../shared/ids";
import { newEventId } from "../../shared/webhooks/outbox";
import { archiveDay, gunzipJsonLines } from "../../workers/consumer/archive";
import { type ConsumerSettings, readSettings } from "../../workers/consumer/config";
import { sweepRetention } from "../../workers/consumer/retention";
import { RETENTION_KINDS, retentionKinds, ScannedRow } from "../../workers/consumer/retention-kinds";
import { sqlText, whileD1Refuses } from "../support/d1-faults";
import { uniqueKey } from "../support/fixtures";
import { insertJobs, type JobRowInput } from "../support/jobs";
import { runConsumer } from "../support/queue";

const DAY = 86_400_000;
const StatusCount = z.object({ status: z.string(), n: z.number() });
const settings = readSettings(env);

const finished = (at: number, status: "succeeded" | "failed" = "succeeded"): Partial<JobRowInput> => ({
	status,
	created_at: at,
	updated_at: at,
	started_at: at,
	completed_at: at,
	caption: status === "succeeded" ? `caption at ${at}` : null,
	error_code: status === "failed" ? "model_error" : null,
	error_message: status === "failed" ? "the model failed" : null,
});

/** Every line of every archive part of `kind` on the day of `at`. */
async function archived(kind: string, at: number): Promise<Record<string, unknown>[]> {
	const lines: Record<string, unknown>[] = [];
	let cursor: string | undefined;
	do {
		const page = await env.ARCHIVE_BUCKET.list({ prefix: `${kind}/date=${archiveDay(at)}/`, cursor });
		for (const object of page.objects) {
			const body = await env.ARCHIVE_BUCKET.get(object.key);
			if (!body) continue;
			for (const line of await gunzipJsonLines(await body.arrayBuffer())) lines.push(line as Record<string, unknown>);
		}
		cursor = page.truncated ? page.cursor : undefined;
	} while (cursor);
	return lines;
}

const idsIn = (lines: Record<string, unknown>[], ids: string[]) =>
	lines.map((l) => String(l.id)).filter((id) => ids.includes(id));

async function remainingJobs(prefix: string): Promise<string[]> {
	const rows = await env.DB.prepare("SELECT id FROM jobs WHERE key LIKE ?1 ORDER BY id").bind(`${prefix}%`).all();
	return rows.results.map((r) => String(r.id));
}

/** The stats counters of scope `prefix` against its rows, status by status. */
async function countersAndRows(
	prefix: string,
): Promise<{ counters: Record<string, number>; rows: Record<string, number> }> {
	const [counters, rows] = await env.DB.batch([
		env.DB.prepare("SELECT status, n FROM job_counts WHERE scope = ?1").bind(prefix),
		env.DB.prepare("SELECT status, COUNT(*) AS n FROM jobs WHERE key LIKE ?1 GROUP BY status").bind(`${prefix}%`),
	]);
	const byStatus = (r: D1Result | undefined) => {
		const out: Record<string, number> = { queued: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0 };
		for (const row of batchRows(r, StatusCount)) out[row.status] = row.n;
		return out;
	};
	return { counters: byStatus(counters), rows: byStatus(rows) };
}

/** Runs the sweep until it has gone through everything (small pages make several parts). */
async function sweepAll(s: ConsumerSettings, now: number) {
	for (let i = 0; i < 50; i++) {
		const report = await sweepRetention(env, s, now, { pageSize: 3 });
		if (!report.truncated && !report.skipped) return report;
	}
	throw new Error("the sweep never finished");
}

async function insertEvent(jobId: string, at: number, delivery: "succeeded" | "pending" | null) {
	const eventId = newEventId(at);
	const statements = [
		env.DB.prepare(
			"INSERT INTO webhook_events (id, job_id, type, payload, created_at, dispatched_at) VALUES (?1, ?2, 'job.succeeded', '{}', ?3, ?3)",
		).bind(eventId, jobId, at),
	];
	const deliveryId = `msg_${ulid(at)}`;
	if (delivery) {
		statements.push(
			env.DB.prepare(
				`INSERT INTO webhook_deliveries (id, event_id, subscription_id, url, status, attempts, created_at, updated_at, completed_at)
				VALUES (?1, ?2, NULL, 'https://example.com/hook', ?3, 1, ?4, ?4, ?5)`,
			).bind(deliveryId, eventId, delivery, at, delivery === "pending" ? null : at),
			env.DB.prepare(
				"INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, duration_ms) VALUES (?1, 1, ?2, 200, 12)",
			).bind(deliveryId, at),
		);
	}
	await env.DB.batch(statements);
	return { eventId, deliveryId };
}

async function insertBatch(status: "completed" | "running", at: number, keys: string[]) {
	const id = `bat_${ulid(at)}`;
	await env.DB.batch([
		env.DB.prepare(
			`INSERT INTO batches (id, status, bucket, key_count, key_prefix, metadata, skip_captioned, total, succeeded, created_at, updated_at, completed_at)
			VALUES (?1, ?2, 'images', ?3, '', '{}', 0, ?3, ?3, ?4, ?4, ?5)`,
		).bind(id, status, keys.length, at, status === "completed" ? at : null),
		...keys.map((key, seq) =>
			env.DB.prepare("INSERT INTO batch_keys (batch_id, seq, key) VALUES (?1, ?2, ?3)").bind(id, seq, key),
		),
	]);
	return id;
}

const exists = async (table: string, column: string, id: string) =>
	(await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${column} = ?1`).bind(id).first("n")) === 1;

describe("retention", () => {
	it("archives then deletes rows past their time and keeps rows inside it, latest jobs and unfinished work", async () => {
		const now = Date.now();
		const old = now - 40 * DAY;
		const prefix = uniqueKey("retention/");
		// A scope of this test's own: its counters count only these rows.
		await env.DB.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES (?1, ?2)").bind(prefix, now).run();
		const [a1, a2, a3, b1, b2, b3, b4, c1, c2, d1, d2] = await insertJobs([
			{ key: `${prefix}a.png`, ...finished(old) },
			{ key: `${prefix}a.png`, ...finished(old + 1, "failed") },
			{ key: `${prefix}a.png`, ...finished(old + 2) },
			{ key: `${prefix}b.png`, ...finished(old + 3) },
			{ key: `${prefix}b.png`, ...finished(now - 20 * DAY) },
			// Superseded, but only 10 days ago ended: inside RETENTION_JOBS_DAYS.
			{ key: `${prefix}b.png`, ...finished(now - 10 * DAY) },
			{ key: `${prefix}b.png`, ...finished(now - 5 * DAY) },
			// The newer job is still queued: c1 holds the object's current caption.
			{ key: `${prefix}c.png`, ...finished(old + 4) },
			{ key: `${prefix}c.png`, created_at: old + 5, updated_at: old + 5 },
			// Superseded, but its event still has a delivery pending (its body is rebuilt from the job).
			{ key: `${prefix}d.png`, ...finished(old + 6) },
			{ key: `${prefix}d.png`, ...finished(old + 7) },
		]);
		if (!a1 || !a2 || !a3 || !b1 || !b2 || !b3 || !b4 || !c1 || !c2 || !d1 || !d2) throw new Error("jobs not inserted");
		const ended = await insertEvent(a1.id, old, "succeeded");
		const redelivering = await insertEvent(a3.id, old + 2, "pending");
		const recent = await insertEvent(b4.id, now - 5 * DAY, "succeeded");
		await insertEvent(d1.id, old + 6, "pending");
		// Past RETENTION_BATCHES_DAYS (90).
		const older = now - 100 * DAY;
		const doneBatch = await insertBatch("completed", older, [`${prefix}a.png`, `${prefix}b.png`]);
		const runningBatch = await insertBatch("running", older + 1, [`${prefix}c.png`]);
		const recentBatch = await insertBatch("completed", old, [`${prefix}a.png`]);
		await env.DB.prepare("INSERT INTO batch_missing (batch_id, key, page) VALUES (?1, ?2, 0)")
			.bind(doneBatch, `${prefix}gone.png`)
			.run();

		const report = await sweepAll(settings, now);
		expect(report.skipped).toBe(false);

		const gone = [a1.id, a2.id, b1.id];
		expect(await remainingJobs(prefix)).toEqual([a3.id, b2.id, b3.id, b4.id, c1.id, c2.id, d1.id, d2.id].sort());
		const jobLines = await archived("jobs", old);
		expect(idsIn(jobLines, [...gone, a3.id, c1.id, c2.id]).sort()).toEqual([...gone].sort());
		expect(jobLines.find((l) => l.id === a2.id)).toMatchObject({
			status: "failed",
			error_code: "model_error",
			key: a2.key,
		});

		expect(await exists("webhook_events", "id", ended.eventId)).toBe(false);
		expect(await exists("webhook_deliveries", "id", ended.deliveryId)).toBe(false);
		expect(await exists("webhook_attempts", "delivery_id", ended.deliveryId)).toBe(false);
		expect(await exists("webhook_events", "id", redelivering.eventId)).toBe(true);
		expect(await exists("webhook_deliveries", "id", redelivering.deliveryId)).toBe(true);
		expect(await exists("webhook_events", "id", recent.eventId)).toBe(true);
		const eventLines = await archived("webhook_events", old);
		expect(idsIn(eventLines, [ended.eventId, redelivering.eventId])).toEqual([ended.eventId]);
		expect(eventLines.find((l) => l.id === ended.eventId)).toMatchObject({
			job_id: a1.id,
			deliveries: [{ id: ended.deliveryId, status: "succeeded", attempts_log: [{ attempt: 1, status_code: 200 }] }],
		});

		expect(await exists("batches", "id", doneBatch)).toBe(false);
		expect(await exists("batch_keys", "batch_id", doneBatch)).toBe(false);
		expect(await exists("batch_missing", "batch_id", doneBatch)).toBe(false);
		expect(await exists("batches", "id", runningBatch)).toBe(true);
		expect(await exists("batch_keys", "batch_id", runningBatch)).toBe(true);
		expect(await exists("batches", "id", recentBatch)).toBe(true);
		const batchLines = await archived("batches", older);
		expect(batchLines.filter((l) => l.id === doneBatch || l.id === runningBatch)).toEqual([
			expect.objectContaining({
				id: doneBatch,
				status: "completed",
				keys: [`${prefix}a.png`, `${prefix}b.png`],
				missing: [`${prefix}gone.png`],
			}),
		]);

		const { counters, rows } = await countersAndRows(prefix);
		expect(counters).toEqual(rows);
		expect(rows).toMatchObject({ succeeded: 7, queued: 1, failed: 0 });
	});

	it("the jobs of an object deleted from the bucket, its latest too, go the same delay after the deletion", async () => {
		const now = Date.now();
		const old = now - 60 * DAY;
		const prefix = uniqueKey("retention-deleted/");
		const [gone, reuploadedOld, reuploadedNew, recentlyDeleted] = await insertJobs([
			{ key: `${prefix}gone.png`, ...finished(old) },
			{ key: `${prefix}again.png`, ...finished(old + 1) },
			{ key: `${prefix}again.png`, ...finished(now - 39 * DAY) },
			{ key: `${prefix}recent.png`, ...finished(old + 2) },
		]);
		if (!gone || !reuploadedOld || !reuploadedNew || !recentlyDeleted) throw new Error("jobs not inserted");
		const deletion = (key: string, at: number) => ({
			account: "local",
			action: "DeleteObject",
			bucket: "images",
			object: { key },
			eventTime: new Date(at).toISOString(),
		});
		const { result } = await runConsumer([
			deletion(gone.key, now - 40 * DAY),
			// Deleted, then uploaded again (its newer job): the object exists.
			deletion(reuploadedOld.key, now - 40 * DAY),
			// Deleted 10 days ago: inside RETENTION_JOBS_DAYS.
			deletion(recentlyDeleted.key, now - 10 * DAY),
		]);
		expect(result.explicitAcks).toHaveLength(3);

		await sweepAll(settings, now);
		expect(await remainingJobs(prefix)).toEqual([reuploadedNew.id, recentlyDeleted.id].sort());
		expect(idsIn(await archived("jobs", old), [gone.id, reuploadedOld.id]).sort()).toEqual(
			[gone.id, reuploadedOld.id].sort(),
		);
		// The record went with the key's last job.
		expect(await exists("deleted_objects", "key", gone.key)).toBe(false);
		expect(await exists("deleted_objects", "key", recentlyDeleted.key)).toBe(true);
	});

	it("a superseded job that a kept batch skipped to stays until that batch goes: its export reads it", async () => {
		const now = Date.now();
		const old = now - 40 * DAY;
		const prefix = uniqueKey("retention-skips/");
		const [skipped, newer, other, otherNewer] = await insertJobs([
			{ key: `${prefix}a.png`, ...finished(old) },
			{ key: `${prefix}a.png`, ...finished(old + 1) },
			{ key: `${prefix}b.png`, ...finished(old + 2) },
			{ key: `${prefix}b.png`, ...finished(old + 3) },
		]);
		if (!skipped || !newer || !other || !otherNewer) throw new Error("jobs not inserted");
		// A batch (recent: kept) that skipped a.png because `skipped` held its caption then.
		const batch = await insertBatch("completed", now - DAY, [`${prefix}a.png`]);
		await env.DB.prepare("INSERT INTO batch_skips (batch_id, key, job_id, seq) VALUES (?1, ?2, ?3, 1)")
			.bind(batch, `${prefix}a.png`, skipped.id)
			.run();
		await sweepAll(settings, now);
		expect(await remainingJobs(prefix)).toEqual([skipped.id, newer.id, otherNewer.id].sort());
	});

	it("a run stopped between the archive write and the delete is finished by the next, each row archived once", async () => {
		const now = Date.now();
		const old = now - 45 * DAY;
		const prefix = uniqueKey("retention-crash/");
		const superseded = await insertJobs(
			Array.from({ length: 5 }, (_, i) => ({ key: `${prefix}${i}.png`, ...finished(old + i) })),
		);
		await insertJobs(Array.from({ length: 5 }, (_, i) => ({ key: `${prefix}${i}.png`, ...finished(now - DAY) })));

		await whileD1Refuses({ table: "jobs", write: "DELETE", when: `old.key LIKE ${sqlText(`${prefix}%`)}` }, () =>
			expect(sweepRetention(env, settings, now, { pageSize: 3 })).rejects.toThrow(/test fault/),
		);
		const ids = superseded.map((j) => j.id);
		// Written to the archive, not deleted.
		expect(idsIn(await archived("jobs", old), ids).length).toBeGreaterThan(0);
		expect((await remainingJobs(prefix)).filter((id) => ids.includes(id))).toEqual(ids);

		// A row that becomes eligible meanwhile, among the interrupted part's: a run that picked its
		// rows afresh would archive that part's rows a second time under another name.
		const [late] = await insertJobs([{ key: `${prefix}1.png`, ...finished(old + 1) }]);
		if (!late) throw new Error("job not inserted");
		const all = [...ids, late.id];

		await sweepAll(settings, now);
		expect((await remainingJobs(prefix)).filter((id) => all.includes(id))).toEqual([]);
		const lines = await archived("jobs", old);
		expect(idsIn(lines, all).sort()).toEqual([...all].sort());
		for (const job of [...superseded, late]) expect(lines.find((l) => l.id === job.id)).toEqual({ ...job });
	});

	it("reports the rows it deleted, not the rows their triggers changed as well", async () => {
		// "Now" 2,000 days ago: only this test's rows are that old, so the report counts them alone.
		const now = Date.now() - 2000 * DAY;
		const old = now - 100 * DAY;
		const prefix = uniqueKey("retention-counts/");
		// A scope of its own, so that each job deleted also changes its scope's counts (a trigger).
		await env.DB.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES (?1, ?2)").bind(prefix, now).run();
		const jobs = await insertJobs(
			Array.from({ length: 4 }, (_, i) => ({ key: `${prefix}x.png`, ...finished(old + i) })),
		);
		const superseded = jobs.slice(0, -1).map((j) => j.id);
		const events = [
			await insertEvent(`job_${ulid(old)}`, old, "succeeded"),
			await insertEvent(`job_${ulid(old)}`, old + 1, null),
		];
		// The newest event always stays (the event stream's ids): one of today's, never walked.
		await insertEvent(`job_${ulid(Date.now())}`, Date.now(), null);
		const batch = await insertBatch("completed", old, [`${prefix}x.png`, `${prefix}y.png`]);

		const totals = { jobs: 0, webhook_events: 0, batches: 0 };
		for (let i = 0; i < 50; i++) {
			const report = await sweepRetention(env, settings, now, { pageSize: 3 });
			totals.jobs += report.jobs_deleted;
			totals.webhook_events += report.webhook_events_deleted;
			totals.batches += report.batches_deleted;
			if (!report.truncated && !report.skipped) break;
		}
		expect(await remainingJobs(prefix)).toEqual([jobs.at(-1)?.id]);
		for (const { eventId } of events) expect(await exists("webhook_events", "id", eventId)).toBe(false);
		expect(await exists("batches", "id", batch)).toBe(false);
		expect(idsIn(await archived("jobs", old), superseded).sort()).toEqual([...superseded].sort());
		expect(totals).toEqual({ jobs: 3, webhook_events: 2, batches: 1 });
	});

	it("two runs at once: one works, the other does nothing", async () => {
		const now = Date.now();
		const old = now - 50 * DAY;
		const prefix = uniqueKey("retention-twice/");
		const jobs = await insertJobs(
			Array.from({ length: 4 }, (_, i) => ({ key: `${prefix}x.png`, ...finished(old + i) })),
		);
		const [first, second] = await Promise.all([
			sweepRetention(env, settings, now, { pageSize: 2 }),
			sweepRetention(env, settings, now, { pageSize: 2 }),
		]);
		expect([first?.skipped, second?.skipped].sort()).toEqual([false, true]);
		await sweepAll(settings, now);
		const ids = jobs.map((j) => j.id);
		const latest = ids.at(-1) ?? "";
		expect(await remainingJobs(prefix)).toEqual([latest]);
		expect(idsIn(await archived("jobs", old), ids).sort()).toEqual(ids.slice(0, -1).sort());
	});

	it("never takes the newest event, so a new event never gets an id the event stream already sent", async () => {
		const at = Date.now() - 40 * DAY;
		const cutoff = Date.now() - settings.RETENTION_WEBHOOKS_DAYS * DAY;
		const [older, newest] = [newEventId(at), newEventId(at + 1)];
		const insert = (id: string) =>
			env.DB.prepare(
				"INSERT INTO webhook_events (id, job_id, type, payload, created_at, dispatched_at) VALUES (?1, ?2, 'job.succeeded', '{}', ?3, ?3)",
			).bind(id, `job_${ulid(at)}`, at);
		// One transaction: the two inserts and the walk see the same table, whatever other files write.
		const [, , walked] = await env.DB.batch([
			insert(older),
			insert(newest),
			env.DB.prepare(retentionKinds.webhook_events.scanSql).bind(
				`evt_${ulid(at - 1).slice(0, 10)}`,
				`evt_${ulid(cutoff).slice(0, 10)}`,
				cutoff,
				200,
			),
		]);
		const eligible = Object.fromEntries(batchRows(walked, ScannedRow).map((r) => [r.id, r.eligible]));
		// Both ended 40 days ago, past RETENTION_WEBHOOKS_DAYS: the older goes, the newest stays.
		expect({ older: eligible[older], newest: eligible[newest] }).toEqual({ older: 1, newest: 0 });
	});

	it("ARCHIVE=off deletes without archiving, and 0 days deletes at the next sweep", async () => {
		// "Now" a year ago: a 0-day retention then reaches only rows older than that, none of other files'.
		const now = Date.now() - 365 * DAY;
		const prefix = uniqueKey("retention-off/");
		const [older, newer] = await insertJobs([
			{ key: `${prefix}x.png`, ...finished(now - 60_000) },
			{ key: `${prefix}x.png`, ...finished(now - 30_000) },
		]);
		if (!older || !newer) throw new Error("jobs not inserted");
		await sweepAll({ ...settings, ARCHIVE: "off" }, now);
		expect(await remainingJobs(prefix)).toEqual([older.id, newer.id]);
		await sweepAll({ ...settings, ARCHIVE: "off", RETENTION_JOBS_DAYS: 0 }, now);
		expect(await remainingJobs(prefix)).toEqual([newer.id]);
		expect(idsIn(await archived("jobs", now - 60_000), [older.id])).toEqual([]);
	});
});

describe("the retention walks' query plans", () => {
	const Plan = z.object({ detail: z.string() });
	// Each walk reads its page of rows by id, and each check of a row is a lookup by its own key
	// (a newer job of its object: the jobs of its object key): no lookup grows with the table (a
	// search by status alone would read every succeeded job).
	const expected = {
		jobs: [
			"SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id>? AND id<?)",
			// The newer job of the key: all jobs of the key (a key has few), as it may be of the same millisecond.
			"SEARCH n USING INDEX jobs_key_created (key=?)",
			"SEARCH d USING PRIMARY KEY (bucket=? AND key=?)",
			"SEARCH n USING INDEX jobs_key_created (key=?)",
			// The job's event: by its id (the job's), or by job_id for one recorded before 0028.
			"SEARCH e USING INDEX sqlite_autoindex_webhook_events_1 (id=?)",
			"SEARCH e USING INDEX webhook_events_job (job_id=?)",
			"SEARCH d USING INDEX webhook_deliveries_once (event_id=?)",
			"SEARCH b USING COVERING INDEX sqlite_autoindex_batches_1 (id=?)",
			// A kept batch that skipped to the job (0033).
			"SEARCH s USING COVERING INDEX batch_skips_job (job_id=?)",
		],
		webhook_events: [
			"SEARCH webhook_events USING INDEX sqlite_autoindex_webhook_events_1 (id>? AND id<?)",
			"SEARCH d USING INDEX webhook_deliveries_once (event_id=?)",
			// The newest event, which stays: max(rowid) is the table's last entry, then that one row.
			"SEARCH webhook_events",
			"SEARCH webhook_events USING INTEGER PRIMARY KEY (rowid=?)",
		],
		batches: [
			"SEARCH batches USING INDEX sqlite_autoindex_batches_1 (id>? AND id<?)",
			"SEARCH e USING INDEX webhook_events_batch (batch_id=?)",
			"SEARCH d USING INDEX webhook_deliveries_once (event_id=?)",
		],
	};
	it.each(RETENTION_KINDS)("%s: a page by id, then lookups by key only", async (name) => {
		const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${retentionKinds[name].scanSql}`)
			.bind("", "~", Date.now(), 200)
			.all()
			.then((r) => r.results.map((row) => Plan.parse(row).detail));
		// "SCAN t" walks the page of at most 200 rows the subquery took.
		expect(
			plan.filter((d) => d.startsWith("SCAN ")),
			plan.join("\n"),
		).toEqual(["SCAN t"]);
		expect(plan.filter((d) => d.startsWith("SEARCH ")).sort()).toEqual([...expected[name]].sort());
	});
});
