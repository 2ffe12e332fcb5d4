/**
 * The D1 rows an image costs (docs/performance.md, "D1 rows written per image"), statement by
 * statement as local D1 reports them (`meta.rows_written`, counted as D1 bills): the upload's insert
 * of its job, then a queue batch of ten notifications claimed in one transaction and finished in
 * another. A change that writes more (an index entry, a trigger's second UPDATE, a write that changes
 * nothing) fails here.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { optionsKey } from "../../shared/jobs/options";
import { eventJobId } from "../../shared/webhooks/job-event";
import { ensureNotificationJob } from "../../workers/status/jobs/create";
import {
	countedFromRows,
	counts,
	deliverPage,
	getBatch,
	jobsOfBatch,
	putObjects,
	queuedBatch,
	unsentBatch,
} from "../batches/support";
import { fixture, upload } from "../support/fixtures";
import { resetModels } from "../support/models";
import { until } from "../support/poll";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

/** A D1 database that notes every statement it runs, alone or in a batch, with the rows it wrote. */
function recordingD1(db: D1Database) {
	const written: { sql: string; rows: number; batch: number }[] = [];
	let batches = 0;
	const sqlOf = new WeakMap<object, string>();
	const label = (sql: string) => sql.replace(/\s+/g, " ").trim().slice(0, 40);
	const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
		const wrapped = new Proxy(statement, {
			get(target, prop) {
				if (prop === "bind") return (...values: unknown[]) => wrap(target.bind(...values), sql);
				if (prop === "run" || prop === "all" || prop === "first") {
					return async (...args: unknown[]) => {
						const result = await target.all();
						written.push({ sql: label(sql), rows: result.meta.rows_written ?? 0, batch: 0 });
						if (prop === "first") {
							const row = (result.results[0] ?? null) as Record<string, unknown> | null;
							const column = args[0] as string | undefined;
							return column === undefined || row === null ? row : (row[column] ?? null);
						}
						return result;
					};
				}
				const value = Reflect.get(target, prop, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		sqlOf.set(wrapped, sql);
		return wrapped;
	};
	const recording = new Proxy(db, {
		get(target, prop) {
			if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
			if (prop === "batch") {
				return async (statements: D1PreparedStatement[]) => {
					const results = await target.batch(statements);
					const batch = ++batches;
					results.forEach((result, i) => {
						const sql = sqlOf.get(statements[i] as object) ?? "";
						written.push({ sql: label(sql), rows: result.meta.rows_written ?? 0, batch });
					});
					return results;
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	/** Rows written by the statements whose SQL starts with `start`, each run separately. */
	const rowsOf = (start: string) => written.filter((w) => w.sql.startsWith(start)).map((w) => w.rows);
	return { db: recording, written, rowsOf };
}

/** A prefix of this test's own, counted as a scope of the statistics besides the whole service. */
async function countedScope(name: string): Promise<string> {
	const prefix = `rw-${name}-${crypto.randomUUID().slice(0, 8)}/`;
	await env.DB.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES (?1, ?2)").bind(prefix, Date.now()).run();
	return prefix;
}

const sum = (rows: number[]) => rows.reduce((a, b) => a + b, 0);

/** The upload's insert of the job of object `key` (as stored), as PUT /v1/images makes it (workers/status/jobs/create.ts). */
async function uploadsJob(db: D1Database, key: string) {
	const object = await env.BUCKET.head(key);
	return ensureNotificationJob(db, {
		bucket: "images",
		key,
		etag: object?.etag ?? "",
		size: object?.size ?? null,
		contentType: "image/jpeg",
		prompt: null,
		maxTokens: null,
		callbackUrl: null,
		keyId: null,
		optionsKey: await optionsKey({}),
	});
}

describe("D1 rows written per image", () => {
	it("an upload, its claim and its finish in a queue batch of ten: 11 rows an image, and its counters", async () => {
		const prefix = await countedScope("uploads");
		const jpeg = await fixture("small.jpg");
		const d1 = recordingD1(env.DB);
		const notifications = await Promise.all(
			Array.from({ length: 10 }, async (_, i) => {
				const key = `${prefix}${i}.jpg`;
				const notification = await upload(key, jpeg);
				await uploadsJob(d1.db, key);
				return notification;
			}),
		);
		// The job row, its primary key, jobs_created, jobs_unfinished, jobs_key_created; one
		// counter in each of the two scopes. No lease entry.
		expect(d1.rowsOf("INSERT INTO jobs")).toEqual(Array(10).fill(7));
		expect(sum(d1.rowsOf("UPDATE jobs SET key_id"))).toBe(0);
		// The same upload again (no key to learn): the job found, nothing written.
		const twice = await uploadsJob(d1.db, `${prefix}0.jpg`);
		expect(twice.row.key).toBe(`${prefix}0.jpg`);
		expect(twice.unclaimable).toEqual([]);
		expect(d1.rowsOf("INSERT INTO jobs")).toEqual([...Array(10).fill(7), 0]);
		expect(d1.rowsOf("UPDATE jobs SET key_id")).toEqual(Array(11).fill(0));

		const { result } = await runConsumer(notifications, { env: { DB: d1.db, WRITE_HOLD_MS: "10000" } });
		expect(result.explicitAcks).toHaveLength(10);
		for (const n of notifications) expect((await onlyJob(n.object.key)).status).toBe("succeeded");

		// The claim: the row alone (no lease index; jobs_unfinished holds no status, so its entry stays).
		expect(d1.rowsOf("UPDATE jobs SET status = 'processing'")).toEqual(Array(10).fill(1));
		// The finish: the row, its jobs_completed entry and the object's `captions` row; the caption's
		// version in the same UPDATE (no second UPDATE of the job by the trigger).
		expect(d1.rowsOf("UPDATE jobs SET status = ?3")).toEqual(Array(10).fill(3));
		// The event: its row and its primary key, recorded dispatched (no target): no outbox entry.
		expect(d1.rowsOf("INSERT INTO webhook_events (id, type,")).toEqual(Array(10).fill(2));
		const undispatched = await env.DB.prepare(
			`SELECT count(*) AS n FROM webhook_events WHERE dispatched_at IS NULL AND ${eventJobId()} IN (
				SELECT id FROM jobs WHERE substr(key, 1, length(?1)) = ?1)`,
		)
			.bind(prefix)
			.first("n");
		expect(undispatched).toBe(0);
		// The counters, once per transaction: queued −10 and processing +10 in each scope's one row (2),
		// processing −10 and succeeded +10 likewise (2), the 30-second and 15-minute buckets (4); no
		// bracket row (the claims and finishes mark their rows as counted).
		const counters = ["WITH asked", "WITH finished"];
		expect(sum(counters.flatMap((c) => d1.rowsOf(c)))).toBe(8);
		expect(d1.written.filter((w) => w.sql.includes("stats_deferred"))).toEqual([]);
		// Nothing else wrote a row (the shared texts were there already, or are counted here).
		const known = [
			"INSERT INTO jobs",
			"UPDATE jobs",
			"INSERT INTO webhook_events",
			"INSERT INTO job_texts",
			...counters,
		];
		expect(d1.written.filter((w) => w.rows > 0 && !known.some((k) => w.sql.startsWith(k)))).toEqual([]);
		// Two transactions for the ten: one claim, one finish.
		expect(new Set(d1.written.filter((w) => w.sql.startsWith("UPDATE jobs SET status")).map((w) => w.batch)).size).toBe(
			2,
		);
	});

	it("a batch's ten jobs claimed and finished in a queue batch: 7 rows a job, its batch's row once per write, counts and numbers exact", async () => {
		const { batch, jobs } = await queuedBatch(10);
		const d1 = recordingD1(env.DB);
		const { result } = await runConsumer(
			jobs.map((job) => ({ kind: "caption-job", job_id: job.id })),
			{ queue: "caption-batch-jobs", env: { DB: d1.db, WRITE_HOLD_MS: "10000" } },
		);
		expect(result.explicitAcks).toHaveLength(10);
		const finished = await jobsOfBatch(batch.id);
		expect(finished.map((j) => j.status)).toEqual(Array(10).fill("succeeded"));

		// The claim: the row alone; the batch's counts once for the ten.
		expect(d1.rowsOf("UPDATE jobs SET status = 'processing'")).toEqual(Array(10).fill(1));
		// The finish: the row, jobs_completed, its completion number's jobs_batch_seq entry (set in the
		// same UPDATE, the batch's counter raised once for the ten), the object's `captions` row.
		expect(d1.rowsOf("UPDATE jobs SET status = ?3")).toEqual(Array(10).fill(4));
		// The event: its row and its primary key, recorded dispatched (no target); still sent, for the
		// batch's progress.
		expect(d1.rowsOf("INSERT INTO webhook_events (id, type,")).toEqual(Array(10).fill(2));
		// The batch row written once by the claims' counts and once by the finishes' (not once a job
		// by each of the triggers jobs_batch_counts and jobs_batch_models).
		expect(d1.rowsOf("WITH asked")[1]).toBe(1);
		expect(d1.rowsOf("WITH finished")[0]).toBe(1);
		expect(new Set(d1.written.filter((w) => w.sql.startsWith("UPDATE jobs SET status")).map((w) => w.batch)).size).toBe(
			2,
		);

		// And the batch's counts, sums and models are its jobs' own.
		const after = await getBatch(batch.id);
		expect(after.counts).toEqual(await countedFromRows(batch.id));
		expect(after.counts).toEqual(counts({ succeeded: 10 }));
		const row = await env.DB.prepare(
			"SELECT models, input_tokens, output_tokens, jobs_with_usage, finished_seq FROM batches WHERE id = ?1",
		)
			.bind(batch.id)
			.first<{
				models: string;
				input_tokens: number;
				output_tokens: number;
				jobs_with_usage: number;
				finished_seq: number;
			}>();
		const byModel: Record<string, number> = {};
		for (const job of finished) byModel[job.model ?? ""] = (byModel[job.model ?? ""] ?? 0) + 1;
		expect(JSON.parse(row?.models ?? "{}")).toEqual(byModel);
		expect(row?.input_tokens).toBe(finished.reduce((a, j) => a + (j.input_tokens ?? 0), 0));
		expect(row?.output_tokens).toBe(finished.reduce((a, j) => a + (j.output_tokens ?? 0), 0));
		expect(row?.jobs_with_usage).toBe(finished.filter((j) => j.input_tokens !== null).length);
		expect(row?.finished_seq).toBe(10);
		const seqs = await env.DB.prepare("SELECT batch_seq FROM jobs WHERE batch_id = ?1 ORDER BY batch_seq")
			.bind(batch.id)
			.all<{ batch_seq: number }>();
		expect(seqs.results.map((r) => r.batch_seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
	});

	it("a listing page: 7 rows a job (the row and its six index entries), its statistics once per scope", async () => {
		const prefix = await countedScope("page");
		await putObjects(["a", "b", "c"].map((n) => `${prefix}${n}.jpg`));
		const batch = await unsentBatch(prefix);
		const d1 = recordingD1(env.DB);
		await deliverPage(batch.id, 0, { holdCaptions: true, env: { DB: d1.db } });
		const jobs = await jobsOfBatch(batch.id);
		expect(jobs.map((j) => j.status)).toEqual(["queued", "queued", "queued"]);
		// The row, its primary key, jobs_created, jobs_unfinished, jobs_key_created, jobs_batch_key,
		// jobs_batch_created: no counter row a job.
		expect(d1.rowsOf("INSERT INTO jobs")).toEqual([21]);
		// queued +3 in each of the two scopes (the whole service's and this test's).
		expect(d1.rowsOf("WITH made(key, status)")).toEqual([2]);
		const counted = await env.DB.prepare("SELECT n FROM job_counts WHERE scope = ?1 AND status = 'queued'")
			.bind(prefix)
			.first("n");
		expect(counted).toBe(3);
	});

	it("a batch job's event recorded dispatched (no target) still reaches the webhooks Worker, which records the batch's progress", async () => {
		const { batch, jobs } = await queuedBatch(3);
		const { result } = await runConsumer([{ kind: "caption-job", job_id: jobs[0]?.id }], {
			queue: "caption-batch-jobs",
		});
		expect(result.explicitAcks).toHaveLength(1);
		// Through the real webhook-deliveries queue: its progress event for the stream (the batch still runs).
		await until(
			`a batch.progress event of ${batch.id}`,
			async () =>
				(await env.DB.prepare(
					"SELECT count(*) AS n FROM webhook_events WHERE batch_id = ?1 AND type = 'batch.progress'",
				)
					.bind(batch.id)
					.first<number>("n"))
					? true
					: undefined,
			20_000,
		);
	});
});
