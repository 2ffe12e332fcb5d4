/**
 * A batch's usage: the tokens its jobs reported, summed as they finish (kept with the counts, read
 * from one row), exact under redelivered messages, and beside a started dry run's estimate.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { call } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { LLAVA, MOONDREAM, resetModels, warmUp } from "../support/models";
import { runConsumer } from "../support/queue";
import {
	captionJob,
	createBatch,
	deliverPage,
	getBatch,
	jobsOfBatch,
	putObjects,
	queuedBatch,
	settled,
	unsentBatch,
	waitForBatch,
} from "./support";

beforeEach(resetModels);

/** The batch's usage computed the expensive way, from its job rows. */
async function summedFromRows(batchId: string) {
	const jobs = await jobsOfBatch(batchId);
	const reported = jobs.filter((j) => j.input_tokens !== null);
	return {
		input_tokens: reported.reduce((sum, j) => sum + (j.input_tokens ?? 0), 0),
		output_tokens: reported.reduce((sum, j) => sum + (j.output_tokens ?? 0), 0),
		jobs_with_usage: reported.length,
	};
}

describe("a batch's usage", () => {
	it("equals the sum of its jobs' usage, job by job as they finish", async () => {
		const { batch, jobs } = await queuedBatch(3);
		expect((await getBatch(batch.id)).usage).toEqual({ input_tokens: 0, output_tokens: 0, jobs_with_usage: 0 });
		for (const job of jobs) {
			await captionJob(job.id);
			expect((await getBatch(batch.id)).usage).toEqual(await summedFromRows(batch.id));
		}
		const done = await getBatch(batch.id);
		expect(done.counts.succeeded).toBe(3);
		expect(done.usage.jobs_with_usage).toBe(3);
		// What the emulator answered, call by call: the batch holds exactly that.
		const answered = emulator.calls.map((c) => c.usage);
		expect(answered).toHaveLength(3);
		expect(done.usage.input_tokens).toBe(answered.reduce((sum, u) => sum + (u?.inputTokens ?? 0), 0));
		expect(done.usage.output_tokens).toBe(answered.reduce((sum, u) => sum + (u?.outputTokens ?? 0), 0));
	});

	it("is not doubled when a finished job's message is delivered again", async () => {
		const { batch, jobs } = await queuedBatch(2);
		for (const job of jobs) await captionJob(job.id);
		const once = await getBatch(batch.id);
		expect(once.usage.jobs_with_usage).toBe(2);
		// Queues deliver at least once: the same caption messages again, one of them twice more.
		const [first] = jobs;
		for (const job of [...jobs, first]) if (job) await captionJob(job.id);
		expect(emulator.calls).toHaveLength(2);
		expect((await getBatch(batch.id)).usage).toEqual(once.usage);
		expect(once.usage).toEqual(await summedFromRows(batch.id));
	});

	it("a job given back to the queue with tokens spent, finished on redelivery, counts once with all its calls", async () => {
		// A model that has answered before stays callable after one failure: the redelivery calls it again.
		await warmUp();
		const prefix = uniqueKey("usage-released/");
		await env.BUCKET.put(`${prefix}a.jpg`, await fixture("small.jpg"), { customMetadata: { output: "tags" } });
		const batch = await unsentBatch(prefix);
		await deliverPage(batch.id, 0, { holdCaptions: true });
		const [job] = await jobsOfBatch(batch.id);
		if (!job) throw new Error("no job");
		// The first answer fails validation and its repair is rate limited: the attempt ends transient,
		// its answer's tokens recorded on the queued job; the redelivery answers twice more.
		emulator.inject({ code: "invalid_output", times: 1 });
		emulator.inject({ code: 3040, times: 1, prompt: "Your previous answer was not accepted" });
		await captionJob(job.id);
		const released = await getBatch(batch.id);
		expect(released.counts.queued).toBe(1);
		expect(released.usage).toEqual(await summedFromRows(batch.id));
		expect(released.usage.jobs_with_usage).toBe(1);
		await captionJob(job.id);
		const after = await getBatch(batch.id);
		expect(after.counts.succeeded).toBe(1);
		const answered = emulator.calls.filter((c) => c.ok).map((c) => c.usage);
		expect(answered).toHaveLength(2);
		expect(after.usage).toEqual({
			input_tokens: answered.reduce((sum, u) => sum + (u?.inputTokens ?? 0), 0),
			output_tokens: answered.reduce((sum, u) => sum + (u?.outputTokens ?? 0), 0),
			jobs_with_usage: 1,
		});
		expect(after.usage).toEqual(await summedFromRows(batch.id));
	});

	it("jobs on a model that reports no tokens add nothing and are not counted", async () => {
		const prefix = uniqueKey("usage-llava/");
		const { batch, jobs } = await queuedBatch(2, false, prefix);
		for (const job of jobs) await runLlava(job.id);
		const done = await getBatch(batch.id);
		expect(done.counts.succeeded).toBe(2);
		expect(done.usage).toEqual({ input_tokens: 0, output_tokens: 0, jobs_with_usage: 0 });
	});

	it("a started dry run keeps its estimate beside the usage of its jobs", async () => {
		const prefix = uniqueKey("usage-dry-run/");
		const keys = ["a.jpg", "b.jpg", "c.jpg"].map((k) => `${prefix}${k}`);
		await putObjects(keys);
		const created = await createBatch({ prefix, dry_run: true });
		const planned = await waitForBatch(created.id, (b) => b.status === "planned");
		expect(planned.estimate).toMatchObject({ model: MOONDREAM, model_calls: 3 });
		expect(planned.usage.jobs_with_usage).toBe(0);
		expect((await call("POST", `/v1/batches/${created.id}/start`)).status).toBe(202);
		const done = await waitForBatch(created.id, settled);
		expect(done.estimate).toEqual(planned.estimate);
		expect(done.counts.succeeded).toBe(3);
		expect(done.usage).toEqual(await summedFromRows(created.id));
		expect(done.usage.jobs_with_usage).toBe(3);
	});
});

/** One caption message for a job with llava as the whole chain. */
const runLlava = (jobId: string) =>
	runConsumer([{ kind: "caption-job", job_id: jobId }], {
		env: { MODEL_CHAIN: LLAVA, CAPTION_JOBS: env.HELD_MESSAGES },
	});
