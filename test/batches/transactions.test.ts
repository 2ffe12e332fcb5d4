/**
 * The batch transactions are all or nothing: a job's finish with its event and its batch's settle,
 * a listing page's commit, a cancel. D1 refuses one write of each (test/support/d1-faults.ts); then
 * nothing of that transaction is in D1, and the retry (or the redelivered message) completes it with
 * counts equal to the batch's rows and one final event. Also: a page that repeats keys the batch
 * already holds counts only what it wrote, and a settled batch is never settled again.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { getBatchRow } from "../../shared/batches/read";
import { Batch } from "../../shared/batches/schema";
import { getJobRow } from "../../shared/jobs/store";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob, jobEventId } from "../../shared/webhooks/job-event";
import { commitPage } from "../../workers/consumer/batch-pages";
import { call, parsed } from "../status/support";
import { sqlText, whileD1Refuses } from "../support/d1-faults";
import { uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { runConsumer } from "../support/queue";
import { countedFromRows, counts, deliverPage, getBatch, jobsOfBatch, putObjects, unsentBatch } from "./support";

beforeEach(() => emulator.reset());

/** A job's caption message, delivered by hand (follow-up caption messages are held back). */
const captionJob = (jobId: string) =>
	runConsumer([{ kind: "caption-job", job_id: jobId }], { env: { CAPTION_JOBS: env.HELD_MESSAGES } });

interface EventRow {
	id: string;
	type: string;
	created_at: number;
}

async function batchEvents(batchId: string): Promise<EventRow[]> {
	const { results } = await env.DB.prepare(
		"SELECT id, type, created_at FROM webhook_events WHERE batch_id = ? AND type <> 'batch.progress'",
	)
		.bind(batchId)
		.all<EventRow>();
	return results;
}

async function jobEvents(jobId: string): Promise<string[]> {
	const { results } = await env.DB.prepare(`SELECT type FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
		.bind(jobId)
		.all<{ type: string }>();
	return results.map((r) => r.type);
}

/** A prefix batch of `n` objects listed in one page (n ≤ 3): it is `running` with n queued jobs. */
async function runningBatch(label: string, n: number): Promise<{ batch: Batch; jobIds: string[] }> {
	const prefix = uniqueKey(`${label}/`);
	await putObjects(Array.from({ length: n }, (_, i) => `${prefix}${i}.jpg`));
	const batch = await unsentBatch(prefix, { skipCaptioned: false });
	await deliverPage(batch.id, 0, { holdCaptions: true });
	const jobs = await jobsOfBatch(batch.id);
	expect((await getBatch(batch.id)).status).toBe("running");
	return { batch, jobIds: jobs.map((j) => j.id) };
}

/** A keys batch inserted without its page message, so that the test delivers its pages. */
const unsentKeysBatch = (keys: string[]) => unsentBatch("", { source: { keys }, skipCaptioned: false });

describe("finish + event + settle", () => {
	it("a refused settle leaves the job unfinished and without an event; its redelivered message completes the batch", async () => {
		const { batch, jobIds } = await runningBatch("tx-finish", 2);
		const [first, last] = jobIds as [string, string];
		await captionJob(first);
		expect((await getJobRow(env.DB, first))?.status).toBe("succeeded");

		// The last job's finish would settle the batch: D1 refuses the settle UPDATE once.
		const refused = await whileD1Refuses(
			{
				table: "batches",
				write: "UPDATE",
				when: `OLD.id = ${sqlText(batch.id)} AND NEW.completed_at IS NOT NULL`,
			},
			() => captionJob(last),
		);
		expect(refused.result.retryMessages).toEqual([{ msgId: refused.ids[0] }]);
		expect(await getJobRow(env.DB, last)).toMatchObject({ status: "processing", caption: null, completed_at: null });
		expect(await jobEvents(last)).toEqual([]);
		const halfway = await getBatch(batch.id);
		expect(halfway).toMatchObject({ status: "running", completed_at: null });
		expect(halfway.counts).toEqual(counts({ processing: 1, succeeded: 1 }));
		expect(halfway.counts).toEqual(await countedFromRows(batch.id));
		expect(await batchEvents(batch.id)).toEqual([]);

		// The refused attempt's lease runs out (its consumer gave the message back); the redelivery finishes it.
		await env.DB.prepare("UPDATE jobs SET lease_expires_at = ?2 WHERE id = ?1")
			.bind(last, Date.now() - 1000)
			.run();
		const redelivered = await captionJob(last);
		expect(redelivered.result.explicitAcks).toEqual(redelivered.ids);
		expect(await jobEvents(last)).toEqual(["job.succeeded"]);
		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed", completed_at: expect.any(String) });
		expect(done.counts).toEqual(counts({ succeeded: 2 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));
		expect((await batchEvents(batch.id)).map((e) => e.type)).toEqual(["batch.completed"]);
	});

	it("the last jobs finished together: the batch's final event comes after every job event, in the stream's order", async () => {
		const { batch, jobIds } = await runningBatch("tx-order", 3);
		// One queue batch of the three messages: their finishes are one transaction (finish.ts, finishJobs).
		const run = await runConsumer(
			jobIds.map((id) => ({ kind: "caption-job", job_id: id })),
			{ env: { CAPTION_JOBS: env.HELD_MESSAGES } },
		);
		expect(run.result.explicitAcks).toHaveLength(3);
		const { results } = await env.DB.prepare(
			`SELECT type FROM webhook_events WHERE (batch_id = ?1 AND type <> 'batch.progress') OR id IN (SELECT value FROM json_each(?2))
			ORDER BY rowid`,
		)
			.bind(batch.id, JSON.stringify(jobIds.map(jobEventId)))
			.all<{ type: string }>();
		expect(results.map((r) => r.type)).toEqual(["job.succeeded", "job.succeeded", "job.succeeded", "batch.completed"]);
	});

	it("a dead letter that comes after the batch was cancelled and settled changes neither completed_at nor the outbox", async () => {
		const { batch, jobIds } = await runningBatch("tx-late-dlq", 2);
		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		const cancelled = await parsed(res, Batch);
		expect(cancelled).toMatchObject({ status: "cancelled", completed_at: expect.any(String) });
		const events = await batchEvents(batch.id);
		expect(events.map((e) => e.type)).toEqual(["batch.cancelled"]);

		// Later than the settle by a clear margin, so that a second settle would show in completed_at.
		await new Promise((resolve) => setTimeout(resolve, 20));
		const dead = await runConsumer([{ kind: "caption-job", job_id: jobIds[0] }], { queue: "caption-jobs-dlq" });
		expect(dead.result.explicitAcks).toEqual(dead.ids);
		expect(await getBatch(batch.id)).toEqual(cancelled);
		expect(await batchEvents(batch.id)).toEqual(events);
		expect(await getJobRow(env.DB, jobIds[0] ?? "")).toMatchObject({ status: "cancelled" });
	});
});

describe("a listing page's commit", () => {
	it("a refused checkpoint leaves no job, no skip and no missing key of the page; the retried page commits all of it", async () => {
		const prefix = uniqueKey("tx-page/");
		const present = [`${prefix}a.jpg`, `${prefix}b.jpg`];
		await putObjects(present);
		const batch = await unsentKeysBatch([...present, `${prefix}missing.jpg`]);

		const refused = await whileD1Refuses(
			{ table: "batches", write: "UPDATE", when: `OLD.id = ${sqlText(batch.id)}` },
			() => deliverPage(batch.id, 0, { holdCaptions: true }),
		);
		expect(refused.result.retryMessages).toEqual([{ msgId: refused.ids[0] }]);
		expect(await jobsOfBatch(batch.id)).toEqual([]);
		expect(await countedFromRows(batch.id)).toEqual(counts({}));
		const untouched = await getBatch(batch.id);
		expect(untouched).toMatchObject({ status: "listing", counts: counts({}) });

		await deliverPage(batch.id, 0, { holdCaptions: true });
		const jobs = await jobsOfBatch(batch.id);
		expect(jobs.map((j) => [j.key, j.status])).toEqual([
			[present[0], "queued"],
			[present[1], "queued"],
		]);
		const listed = await getBatch(batch.id);
		expect(listed.counts).toEqual(counts({ queued: 2, missing: 1 }));
		expect(listed.counts).toEqual(await countedFromRows(batch.id));

		for (const job of jobs.filter((j) => j.status === "queued")) await captionJob(job.id);
		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed" });
		expect(done.counts).toEqual(counts({ succeeded: 2, missing: 1 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));
		expect((await batchEvents(batch.id)).map((e) => e.type)).toEqual(["batch.completed"]);
	});

	it("a refused settle on the last page undoes the page; the retried page settles the batch once", async () => {
		const prefix = uniqueKey("tx-last-page/");
		// Every key is missing: the only page records them all and settles the batch.
		const batch = await unsentKeysBatch([`${prefix}x.jpg`, `${prefix}y.jpg`]);
		const refused = await whileD1Refuses(
			{
				table: "batches",
				write: "UPDATE",
				when: `OLD.id = ${sqlText(batch.id)} AND NEW.completed_at IS NOT NULL`,
			},
			() => deliverPage(batch.id, 0),
		);
		expect(refused.result.retryMessages).toEqual([{ msgId: refused.ids[0] }]);
		expect(await countedFromRows(batch.id)).toEqual(counts({}));
		expect(await getBatch(batch.id)).toMatchObject({ status: "listing", completed_at: null, counts: counts({}) });
		expect(await batchEvents(batch.id)).toEqual([]);

		await deliverPage(batch.id, 0);
		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed", completed_at: expect.any(String) });
		expect(done.counts).toEqual(counts({ missing: 2 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));
		expect((await batchEvents(batch.id)).map((e) => e.type)).toEqual(["batch.completed"]);
	});

	it("a page that overlaps keys the batch already holds counts only the rows it wrote, and the batch settles", async () => {
		const prefix = uniqueKey("tx-overlap/");
		const [a, b, c, d] = ["a", "b", "c", "d"].map((k) => `${prefix}${k}.jpg`) as [string, string, string, string];
		await putObjects([a, b, c]);
		const captioned = await insertJob({ key: d, status: "succeeded", caption: "already" });
		const heads = new Map<string, { key: string; etag: string; size: number }>();
		for (const key of [a, b, c]) {
			const head = await env.BUCKET.head(key);
			if (head) heads.set(key, { key, etag: head.etag, size: head.size });
		}
		const object = (key: string) => heads.get(key) ?? { key, etag: "", size: null };
		const batch = await unsentBatch(prefix, { skipCaptioned: false });
		const row = async () => {
			const current = await getBatchRow(env.DB, batch.id);
			if (!current) throw new Error("the batch is gone");
			return current;
		};

		const first = await commitPage(
			env.DB,
			await row(),
			0,
			{ queue: [object(a), object(b)], missing: [], skip: [{ key: d, jobId: captioned.id }], nextCursor: "b" },
			Date.now(),
		);
		expect(first).toMatchObject({ kind: "committed", queued: [expect.any(String), expect.any(String)] });
		// The next page starts at the previous page's last key (b) and repeats the skip of d, and a as
		// missing (deleted in between): a keeps its job and is not counted again.
		const second = await commitPage(
			env.DB,
			await row(),
			1,
			{ queue: [object(b), object(c)], missing: [a], skip: [{ key: d, jobId: captioned.id }], nextCursor: null },
			Date.now(),
		);
		expect(second).toMatchObject({ kind: "committed", queued: [expect.any(String)] });
		const listed = await getBatch(batch.id);
		expect(listed).toMatchObject({ status: "running" });
		expect(listed.counts).toEqual(counts({ queued: 3, skipped: 1 }));
		expect(listed.counts).toEqual(await countedFromRows(batch.id));

		for (const job of await jobsOfBatch(batch.id)) await captionJob(job.id);
		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed", completed_at: expect.any(String) });
		expect(done.counts).toEqual(counts({ succeeded: 3, skipped: 1 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));
	});
});

describe("cancel", () => {
	it("a refused cancel leaves the batch running with its jobs queued; cancelling again settles it once", async () => {
		const { batch, jobIds } = await runningBatch("tx-cancel", 3);
		const before = await getBatch(batch.id);
		const refused = await whileD1Refuses(
			{
				table: "jobs",
				write: "UPDATE",
				when: `OLD.batch_id = ${sqlText(batch.id)} AND NEW.status = 'cancelled'`,
			},
			() => call("POST", `/v1/batches/${batch.id}/cancel`),
		);
		expect(refused.status).toBe(500);
		expect(await getBatch(batch.id)).toEqual(before);
		expect((await jobsOfBatch(batch.id)).map((j) => j.status)).toEqual(["queued", "queued", "queued"]);
		expect(await batchEvents(batch.id)).toEqual([]);

		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		expect(res.status).toBe(200);
		const cancelled = await parsed(res, Batch);
		expect(cancelled).toMatchObject({ status: "cancelled", completed_at: expect.any(String) });
		expect(cancelled.counts).toEqual(counts({ cancelled: 3 }));
		expect(cancelled.counts).toEqual(await countedFromRows(batch.id));
		expect((await batchEvents(batch.id)).map((e) => e.type)).toEqual(["batch.cancelled"]);
		const ended = await jobsOfBatch(batch.id);
		expect(ended.map((j) => [j.id, j.status]).sort()).toEqual(jobIds.map((id) => [id, "cancelled"]).sort());
	});
});
