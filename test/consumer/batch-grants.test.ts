/**
 * A queue batch asks the shared Durable Objects once for all its captions, not once per image:
 * the health registry admits a model once (a half-open model's single probe goes to one message,
 * the others wait for its outcome in the batch) and hears the batch's successful calls in one
 * round trip; the lane scheduler tells the batch's messages of one key their slots on one stream
 * (a grant of slots shared by the batch), handed out at the limit's pace. Counted through the bindings passed in env (test/support/counted-calls.ts).
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import type { ModelCallRecord } from "../../shared/models/health-registry";
import { type Counted, counted } from "../support/counted-calls";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { LLAVA, MOONDREAM, resetModels, UFORM, warmUp } from "../support/models";
import { onlyJob, type RunOptions, runConsumer } from "../support/queue";

beforeEach(resetModels);

/** Uploads `n` images and runs them through the consumer as one batch, counting its registry and scheduler calls. */
async function countedBatch(n: number, vars: RunOptions["env"]) {
	const jpeg = await fixture("small.jpg");
	const keys = Array.from({ length: n }, () => uniqueKey("grant.jpg"));
	const notifications = await Promise.all(keys.map((key) => upload(key, jpeg)));
	const health = counted(env.MODEL_HEALTH);
	const scheduler = counted(env.MODEL_SCHEDULER);
	const run = await runConsumer(notifications, {
		env: { ...vars, MODEL_HEALTH: health.ns, MODEL_SCHEDULER: scheduler.ns },
	});
	expect(run.result.retryMessages).toEqual([]);
	return { keys, health, scheduler, jobs: await Promise.all(keys.map(onlyJob)) };
}

/** The calls recorded with the registry (model, and whether it was a probe), whichever method carried them. */
function recorded(health: Counted<unknown>): string[] {
	const label = (model: unknown, call: unknown) =>
		`${String(model)}${(call as { probe?: boolean } | undefined)?.probe ? " probe" : ""}`;
	return health.calls.flatMap((c) => {
		if (c.method === "record") return [label(c.args[0], c.args[1])];
		if (c.method === "recordMany") return (c.args[0] as ModelCallRecord[]).map((r) => label(r.model, r.call));
		return [];
	});
}

/** The slot streams the batch asked the scheduler for: how many slots each. */
const streams = (scheduler: Counted<unknown>) =>
	scheduler.calls.filter((c) => c.method === "slotStream").map((c) => c.args[1]);

describe("a queue batch of captions", () => {
	it("of ten asks the registry once to admit the model and once to record its ten calls, and the scheduler once for ten slots", async () => {
		await warmUp(MOONDREAM);
		const { health, scheduler, jobs } = await countedBatch(10, {
			MODEL_CHAIN: MOONDREAM,
			// A limit of its own, fresh in the scheduler, whose burst covers the batch.
			MODEL_RATE_LIMITS: `${MOONDREAM}=600`,
			MODEL_BURST: "10",
		});
		for (const job of jobs) expect(job).toMatchObject({ status: "succeeded", model: MOONDREAM });
		expect(health.count("admit")).toBe(1);
		expect(health.count("record")).toBe(0);
		expect(health.count("recordMany")).toBe(1);
		expect(recorded(health)).toEqual(Array(10).fill(MOONDREAM));
		expect(scheduler.calls.map((c) => c.method)).toEqual(["slotStream"]);
		expect(streams(scheduler)).toEqual([10]);
		// Every call was recorded: the registry's figures count the warm-up's and the batch's.
		const [figures] = await env.MODEL_HEALTH.getByName("models").figures([MOONDREAM]);
		expect(figures?.calls_1h).toBe(11);
	});

	it("shares a grant of slots that never runs ahead of the limit's pace: the burst at once, then one slot per interval", async () => {
		await warmUp(LLAVA);
		// 249 a minute with a burst of 4 paces at 240 a minute: a slot every 250 ms after the burst.
		const { scheduler, jobs } = await countedBatch(12, {
			MODEL_CHAIN: LLAVA,
			MODEL_RATE_LIMITS: `${LLAVA}=249`,
			MODEL_BURST: "4",
			CAPTION_CONCURRENCY: "12",
		});
		for (const job of jobs) expect(job).toMatchObject({ status: "succeeded", model: LLAVA });
		// One stream told the batch all twelve slots.
		expect(scheduler.calls.map((c) => c.method)).toEqual(["slotStream"]);
		expect(streams(scheduler)).toEqual([12]);
		const times = emulator.calls
			.filter((c) => c.model === LLAVA)
			.map((c) => c.at)
			.sort((a, b) => a - b);
		expect(times).toHaveLength(12);
		const first = times[0] ?? 0;
		// The burst at once.
		expect((times[3] ?? 0) - first).toBeLessThan(250);
		// GCRA: the k-th call (from 0) no sooner than (k - burst + 1) intervals after the first (a few ms of timer jitter).
		times.forEach((t, k) => {
			expect(t - first).toBeGreaterThanOrEqual(Math.max(0, k - 3) * 250 - 20);
		});
	});

	it("gives a half-open model one probe: the batch's other messages wait for its outcome, not the registry", async () => {
		// Both models are unknown to the fresh registry (half-open); the first answers only 5028.
		const { health, jobs } = await countedBatch(10, { MODEL_CHAIN: `${UFORM},${LLAVA}`, MODEL_RATE_LIMITS: "off" });
		for (const job of jobs) expect(job).toMatchObject({ status: "succeeded", model: LLAVA });
		expect(emulator.callsTo(UFORM)).toBe(1);
		// One admission per model: uform's probe (gone), llava's probe (answered), then the others' calls.
		const admitted = health.calls.filter((c) => c.method === "admit").map((c) => c.args[0]);
		expect(admitted).toEqual([UFORM, LLAVA]);
		// One probe per model, recorded at once; the nine other answers together.
		expect(recorded(health)).toEqual([`${UFORM} probe`, `${LLAVA} probe`, ...Array(9).fill(LLAVA)]);
		expect(health.count("recordMany")).toBe(1);
	});
});
