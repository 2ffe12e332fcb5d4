/**
 * The model-health registry shared by every consumer invocation: a retired model answering a code
 * no document lists costs one call per cool-down however many batches run; a model's circuit opens
 * after consecutive failures and closes when a probe succeeds; gone codes (licence, paid plan) skip
 * the model for every batch. Observed through the emulator's call log and GET /v1/models.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { ModelList } from "../../shared/models/model-list";
import { call, parsed } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { LLAMA32, LLAVA, MISTRAL, MOONDREAM, resetModels, UFORM, warmUp } from "../support/models";
import { onlyJob, type RunOptions, runConsumer } from "../support/queue";

beforeEach(resetModels);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Uploads `n` images and runs them through the consumer as one batch. */
async function batch(n: number, env: RunOptions["env"]) {
	const jpeg = await fixture("small.jpg");
	const keys = Array.from({ length: n }, () => uniqueKey("health.jpg"));
	const notifications = await Promise.all(keys.map((key) => upload(key, jpeg)));
	const run = await runConsumer(notifications, { env });
	return { keys, ...run };
}

async function models(): Promise<Map<string, ModelList["data"][number]>> {
	const res = await call("GET", "/v1/models");
	expect(res.status).toBe(200);
	return new Map((await parsed(res, ModelList)).data.map((m) => [m.id, m]));
}

describe("a retired model (5028: This model was deprecated)", () => {
	const chain = `${UFORM},${LLAVA}`;

	it("every job of a 50-image run succeeds on the next model; the retired one is called once across concurrent batches", async () => {
		// Five invocations at once, ten messages each, as max_concurrency would run them.
		const runs = await Promise.all([1, 2, 3, 4, 5].map(() => batch(10, { MODEL_CHAIN: chain })));
		for (const run of runs) {
			expect(run.result.retryMessages).toEqual([]);
			for (const key of run.keys) expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: LLAVA });
		}
		expect(emulator.callsTo(UFORM)).toBe(1);
		expect(emulator.calls.find((c) => c.model === UFORM)?.code).toBe(5028);
		expect(emulator.callsTo(LLAVA)).toBe(50);
		// Later batches within the cool-down do not call it either.
		await Promise.all([batch(5, { MODEL_CHAIN: chain }), batch(5, { MODEL_CHAIN: chain })]);
		expect(emulator.callsTo(UFORM)).toBe(1);
	});

	it("is skipped as gone for the long cool-down, not probed again after the short one", async () => {
		const env = { MODEL_CHAIN: chain, MODEL_COOLDOWN_SECONDS: "1" };
		await batch(2, env);
		await sleep(1100);
		await batch(2, env);
		expect(emulator.callsTo(UFORM)).toBe(1);
	});
});

describe("a model answering only a code no document lists", () => {
	const chain = `${UFORM},${LLAVA}`;

	it("after each cool-down one call probes it again, whatever the number of batches; a failed probe doubles the cool-down", async () => {
		emulator.overrides.retiredError = "5999: an answer no document lists";
		const env = { MODEL_CHAIN: chain, MODEL_COOLDOWN_SECONDS: "2" };
		await batch(5, env);
		expect(emulator.callsTo(UFORM)).toBe(1);
		await sleep(2100);
		await Promise.all([batch(5, env), batch(5, env), batch(5, env)]);
		expect(emulator.callsTo(UFORM)).toBe(2);
		// The second failed probe opened the circuit for 4 s: no call 2 s later.
		await sleep(2100);
		await batch(5, env);
		expect(emulator.callsTo(UFORM)).toBe(2);
		const probes = emulator.calls.filter((c) => c.model === UFORM).map((c) => c.at);
		expect((probes[1] ?? 0) - (probes[0] ?? 0)).toBeGreaterThanOrEqual(2000);
		expect(emulator.calls.filter((c) => c.model === LLAVA && !c.ok)).toEqual([]);
	});
});

describe("the circuit of a model that was working", () => {
	it("opens after MODEL_CIRCUIT_FAILURES consecutive failures with any code, and closes after the cool-down when it answers again", async () => {
		await warmUp();
		const env = { MODEL_CIRCUIT_FAILURES: "3", MODEL_COOLDOWN_SECONDS: "1", CAPTION_CONCURRENCY: "1" };
		// A code no document lists, three times: each failed job moves on to the next model.
		emulator.inject({ model: MOONDREAM, code: 5999, times: 3 });
		const failing = await batch(5, env);
		for (const key of failing.keys) expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: LLAVA });
		// The third failure opened the circuit: the last two jobs did not call moondream at all.
		expect(emulator.callsTo(MOONDREAM)).toBe(3);
		let moondream = (await models()).get(MOONDREAM);
		expect(moondream).toMatchObject({ status: "circuit_open", position: 1, calls_1h: 4, failures_1h: 3 });
		expect(Date.parse(moondream?.since ?? "")).toBeGreaterThan(Date.now() - 5000);

		await sleep(1100);
		// The fault is used up: the probe succeeds and closes the circuit for every caller.
		const recovered = await batch(3, { ...env, CAPTION_CONCURRENCY: "3" });
		for (const key of recovered.keys)
			expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: MOONDREAM });
		expect(emulator.callsTo(MOONDREAM)).toBe(6);
		moondream = (await models()).get(MOONDREAM);
		expect(moondream).toMatchObject({ status: "ok", calls_1h: 7, failures_1h: 3 });
	});

	it("transient errors count too: the messages are retried until the circuit opens, then the chain moves on", async () => {
		await warmUp();
		const env = { MODEL_CIRCUIT_FAILURES: "2", CAPTION_CONCURRENCY: "1" };
		emulator.inject({ model: MOONDREAM, code: 3040, times: 10 });
		const run = await batch(3, env);
		// First failure: retried; second: the circuit opens and that job moves on; the third skips moondream.
		expect(run.result.retryMessages).toHaveLength(1);
		const jobs = await Promise.all(run.keys.map(onlyJob));
		expect(jobs.map((j) => j.status)).toEqual(["queued", "succeeded", "succeeded"]);
		expect(jobs[1]?.model).toBe(LLAVA);
		expect(emulator.callsTo(MOONDREAM)).toBe(2);
		expect((await models()).get(MOONDREAM)?.status).toBe("circuit_open");
	});
});

describe("one tenant's inputs cannot trip the shared circuit", () => {
	/** `n` API jobs of `keyId`, with `prompt`, run through the consumer as one batch; their rows after. */
	async function keyJobs(n: number, keyId: string, prompt: string, env: RunOptions["env"]) {
		const jpeg = await fixture("small.jpg");
		const jobs = await Promise.all(
			Array.from({ length: n }, async () => {
				const key = uniqueKey("tenant.jpg");
				const put = await upload(key, jpeg);
				return insertJob({ key, etag: put.object.eTag ?? "", size: put.object.size ?? null, prompt, key_id: keyId });
			}),
		);
		await runConsumer(
			jobs.map((job) => ({ kind: "caption-job", job_id: job.id })),
			{ env },
		);
		return Promise.all(jobs.map((job) => onlyJob(job.key)));
	}

	it("a key whose prompts make the model fail, again and again, leaves it working for another key", async () => {
		await warmUp();
		const env = { MODEL_CIRCUIT_FAILURES: "3", CAPTION_CONCURRENCY: "1" };
		const poison = `poison-${Date.now()}`;
		emulator.inject({ model: MOONDREAM, code: 5999, times: 100, prompt: poison });
		const bad = await keyJobs(6, "key_tenant_a", `Describe ${poison}.`, env);
		// Each of the key's jobs moved on to the next model; the model was asked every time.
		for (const job of bad) expect(job).toMatchObject({ status: "succeeded", model: LLAVA });
		expect(emulator.callsTo(MOONDREAM)).toBe(6);
		expect((await models()).get(MOONDREAM)?.status).toBe("ok");
		const good = await keyJobs(3, "key_tenant_b", "What is in this picture?", env);
		for (const job of good) expect(job).toMatchObject({ status: "succeeded", model: MOONDREAM });
	});

	it("the same failures on two keys' requests open it, as a broken model should", async () => {
		await warmUp();
		const env = { MODEL_CIRCUIT_FAILURES: "3", CAPTION_CONCURRENCY: "1" };
		const poison = `poison-${Date.now()}`;
		emulator.inject({ model: MOONDREAM, code: 5999, times: 100, prompt: poison });
		await keyJobs(3, "key_tenant_a", `Describe ${poison}.`, env);
		await keyJobs(1, "key_tenant_b", `Describe ${poison}.`, env);
		expect((await models()).get(MOONDREAM)?.status).toBe("circuit_open");
	});
});

describe("codes that say this account cannot use a model", () => {
	it.each([
		[5016, "licence not accepted"],
		[5035, "paid plan only"],
	])("%s (%s) moves on to the next model, and every later batch skips the model as gone", async (code) => {
		const chain = `${LLAMA32},${MISTRAL}`;
		emulator.inject({ model: LLAMA32, code, times: 1 });
		const first = await batch(3, { MODEL_CHAIN: chain });
		for (const key of first.keys) expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: MISTRAL });
		await batch(3, { MODEL_CHAIN: chain });
		expect(emulator.callsTo(LLAMA32)).toBe(1);
		expect(emulator.callsTo(MISTRAL)).toBe(6);
	});

	it("a model that is gone shows as gone in GET /v1/models, with its calls and failures", async () => {
		emulator.overrides.goneModels = new Set([MOONDREAM]);
		await batch(4, {});
		const list = await models();
		expect(list.get(MOONDREAM)).toMatchObject({ status: "gone", position: 1, calls_1h: 1, failures_1h: 1 });
		expect(list.get(LLAVA)).toMatchObject({ status: "ok", position: 2, calls_1h: 4, failures_1h: 0 });
		expect(list.get(LLAVA)?.latency_ms_p50_1h).toEqual(expect.any(Number));
	});
});
