/**
 * The statistics counters (migrations/0008_bounded_stats.sql) against the rows they stand for: after
 * jobs move through every kind of transition the code makes (claim, finish, release after a
 * transient error, dead letter, sweep, batch cancel), the counts by status and the completion
 * buckets equal what counting the rows gives (the rows read: stats-bounded.test.ts).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { emulator } from "../../shared/models/emulator";
import { readStats, Stats } from "../../workers/status/jobs/stats";
import { deliverPage, getBatch, putObjects, unsentBatch } from "../batches/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob, insertJobs } from "../support/jobs";
import { resetModels, warmUp } from "../support/models";
import { onlyJob, runConsumer, runScheduled } from "../support/queue";
import { call, createKey, parsed } from "./support";

const Mismatch = z.object({
	what: z.string(),
	scope: z.string(),
	at: z.number(),
	counted: z.number(),
	actual: z.number(),
});

/**
 * Where the counters of `scope` differ from the rows, in one statement (one snapshot, whatever
 * the real queues are doing meanwhile): counts by status, and the completions of the last 24 h
 * in both bucket sizes.
 */
async function mismatches(scope: string): Promise<z.infer<typeof Mismatch>[]> {
	const since = Date.now() - 24 * 3_600_000;
	const { results } = await env.DB.prepare(
		`WITH mine AS (SELECT * FROM jobs WHERE substr(key, 1, length(?1)) = ?1),
		statuses(status) AS (VALUES ('queued'), ('processing'), ('succeeded'), ('failed'), ('cancelled')),
		counts AS (SELECT 'count:' || s.status AS what, 0 AS at,
			(SELECT n FROM job_counts WHERE scope = ?1 AND status = s.status) AS counted,
			(SELECT count(*) FROM mine WHERE status = s.status) AS actual FROM statuses s),
		widths(w) AS (VALUES (30), (900)),
		actual AS (SELECT w, completed_at - completed_at % (w * 1000) AS start, count(*) AS completed,
			sum(status = 'succeeded') AS succeeded, sum(status = 'failed') AS failed
			FROM mine, widths WHERE completed_at IS NOT NULL GROUP BY w, start),
		kept AS (SELECT bucket_seconds AS w, start, completed, succeeded, failed FROM job_completions WHERE scope = ?1),
		buckets AS (
			SELECT 'bucket' || a.w AS what, a.start AS at, coalesce(k.completed, -1) AS counted, a.completed AS actual
			FROM actual a LEFT JOIN kept k ON k.w = a.w AND k.start = a.start
			WHERE a.start >= ?2 AND (k.completed IS NULL OR k.completed <> a.completed OR k.succeeded <> a.succeeded
				OR k.failed <> a.failed)
			UNION ALL
			SELECT 'extra-bucket' || k.w, k.start, k.completed, 0 FROM kept k
			WHERE k.start >= ?2 AND NOT EXISTS (SELECT 1 FROM actual a WHERE a.w = k.w AND a.start = k.start))
		SELECT what, ?1 AS scope, at, coalesce(counted, -1) AS counted, actual FROM counts WHERE counted IS NOT actual
		UNION ALL SELECT what, ?1, at, counted, actual FROM buckets`,
	)
		.bind(scope, since)
		.all();
	return z.array(Mismatch).parse(results);
}

describe("statistics counters", () => {
	beforeAll(async () => {
		await resetModels();
		await warmUp();
	});

	it("equal the rows after claims, finishes, retries, failures, dead letters, sweeps and a batch cancel", async () => {
		const prefix = uniqueKey("counted/");
		// A key made before the jobs: its prefix is counted from the start.
		await createKey(prefix);

		// Succeeded, and failed (not an image), through the consumer.
		const ok = await upload(`${prefix}ok.jpg`, await fixture("small.jpg"));
		const bad = await upload(`${prefix}bad.jpg`, "not an image");
		await runConsumer([ok, bad]);
		expect((await onlyJob(`${prefix}bad.jpg`)).status).toBe("failed");

		// A transient model error: claimed, then released to the queue; then dead-lettered.
		emulator.inject({ code: 3040, times: 1 });
		const retried = await upload(`${prefix}retried.jpg`, await fixture("small.jpg"));
		await runConsumer([retried]);
		expect((await onlyJob(`${prefix}retried.jpg`)).status).toBe("queued");
		await runConsumer([retried], { queue: "caption-jobs-dlq" });
		expect((await onlyJob(`${prefix}retried.jpg`)).error_code).toBe("dead_lettered");

		// A stalled job past its attempts, failed by the sweeper.
		const old = Date.now() - 10 * 60_000;
		await insertJob({
			key: `${prefix}stalled.jpg`,
			status: "processing",
			attempts: 9,
			lease_token: "lost",
			lease_expires_at: old,
			created_at: old,
		});
		await runScheduled();
		expect((await onlyJob(`${prefix}stalled.jpg`)).error_code).toBe("retries_exhausted");

		// A batch whose queued jobs are cancelled (page size 3 in the test config).
		const keys = Array.from({ length: 3 }, (_, i) => `${prefix}batch/${i}.jpg`);
		await putObjects(keys);
		const batch = await unsentBatch(`${prefix}batch/`);
		await deliverPage(batch.id, 0, { holdCaptions: true });
		expect((await call("POST", `/v1/batches/${batch.id}/cancel`)).status).toBe(200);
		expect((await getBatch(batch.id)).counts.cancelled).toBe(3);

		// Rows written directly, some already finished a while ago.
		await insertJobs([
			{ key: `${prefix}direct-queued.jpg` },
			{ key: `${prefix}direct-done.jpg`, status: "succeeded", completed_at: Date.now() - 3_600_000 },
		]);

		expect(await mismatches(prefix)).toEqual([]);
		expect(await mismatches("")).toEqual([]);
		// A prefix counted only once its jobs exist (the migration's backfill does the same for '').
		await createKey(`${prefix}batch/`);
		expect(await mismatches(`${prefix}batch/`)).toEqual([]);

		const stats = await parsed(await call("GET", "/v1/stats", { token: (await createKey(prefix)).token }), Stats);
		expect(stats.counts).toEqual({ queued: 1, processing: 0, succeeded: 2, failed: 3, cancelled: 3, total: 9 });
		expect(stats.windows[2]).toMatchObject({ completed: 8, succeeded: 2, failed: 3 });
	});

	it("a stats request for a prefix no key registered counts it once, then reads counters", async () => {
		const prefix = uniqueKey("unregistered/");
		await insertJobs(Array.from({ length: 5 }, (_, i) => ({ key: `${prefix}${i}`, status: "failed" as const })));
		const stats = await readStats(env.DB, prefix, []);
		expect(stats.counts).toMatchObject({ failed: 5, total: 5 });
		expect(await mismatches(prefix)).toEqual([]);
	});
});
