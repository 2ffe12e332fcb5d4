/**
 * Usage: a job records the tokens its model calls reported, as the model's published answer has
 * them (moondream's `metrics`, the chat models' `usage`), summed over every call made for it, and
 * null for models whose answer reports none.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { call, parsed } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { GEMMA, LLAMA32, LLAVA, MISTRAL, MOONDREAM, resetModels, SCOUT } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

async function captionOn(chain: string, metadata: Record<string, string> = {}, attempts = 1) {
	const key = uniqueKey("usage.jpg");
	const notification = await upload(key, await fixture("small.jpg"), metadata);
	const run = await runConsumer([notification], { env: { MODEL_CHAIN: chain }, attempts });
	return { key, notification, run, row: await onlyJob(key) };
}

async function jobJson(id: string): Promise<Job> {
	const res = await call("GET", `/v1/jobs/${id}`);
	expect(res.status).toBe(200);
	return parsed(res, Job);
}

/**
 * A Durable Object binding as the consumer reaches it, except that `method` of its objects fails
 * with `message` (as a restarted object fails the calls in progress).
 */
function failing<N extends DurableObjectNamespace>(ns: N, method: string, message: string): N {
	const stub = (name: string) =>
		new Proxy(ns.getByName(name), {
			get(target, prop) {
				if (prop === method) return async () => Promise.reject(new Error(message));
				const value: unknown = Reflect.get(target, prop, target);
				if (typeof value !== "function") return value;
				return (...args: unknown[]) => Reflect.apply(value, target, args);
			},
		});
	return new Proxy(ns, {
		get(target, prop) {
			if (prop === "getByName") return stub;
			const value: unknown = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

/** The usage the emulator's answers carried, call by call. */
const emulatedUsage = () => emulator.calls.map((c) => c.usage);

/** Expects one call, which reported tokens, and the row to have exactly them; returns them. */
function expectOneReport(row: { input_tokens: number | null; output_tokens: number | null }) {
	const [reported, ...more] = emulatedUsage();
	expect(more).toEqual([]);
	expect(reported).not.toBeNull();
	expect({ input: row.input_tokens, output: row.output_tokens }).toEqual({
		input: reported?.inputTokens,
		output: reported?.outputTokens,
	});
	return reported;
}

/** Expects the job back in the queue with exactly the tokens of the one call the emulator answered. */
async function queuedWithFirstAnswer(key: string, run: Awaited<ReturnType<typeof runConsumer>>) {
	expect(run.result.retryMessages.map((m) => m.msgId)).toEqual(run.ids);
	const row = await onlyJob(key);
	expect(row.status).toBe("queued");
	expectOneReport(row);
}

describe("a job's usage", () => {
	it.each([MOONDREAM, SCOUT, MISTRAL, GEMMA])(
		"%s reports tokens: the job has exactly the emulator's numbers, in D1 and in the Job JSON",
		async (model) => {
			const { row } = await captionOn(model);
			expect(row.status).toBe("succeeded");
			const reported = expectOneReport(row);
			expect((await jobJson(row.id)).usage).toEqual({
				input_tokens: reported?.inputTokens,
				output_tokens: reported?.outputTokens,
			});
		},
	);

	it("moondream's caption skill: 729 input tokens for the image, output tokens from the caption's length", async () => {
		const { row } = await captionOn(MOONDREAM);
		// The default prompt runs moondream's caption skill, which sends no prompt: the image alone.
		expect(row.input_tokens).toBe(729);
		const captionBytes = new TextEncoder().encode(row.caption ?? "").length;
		expect(row.output_tokens).toBe(Math.ceil(captionBytes / 4));
	});

	it.each([LLAVA, LLAMA32])("%s reports no tokens: the job's usage is null", async (model) => {
		const { row } = await captionOn(model);
		expect(row.status).toBe("succeeded");
		expect(emulatedUsage()).toEqual([null]);
		expect({ input: row.input_tokens, output: row.output_tokens }).toEqual({ input: null, output: null });
		expect((await jobJson(row.id)).usage).toBeNull();
	});

	it("a repair's call is added to the first call's", async () => {
		emulator.inject({ code: "invalid_output", times: 1 });
		const { row } = await captionOn(SCOUT, { output: "tags" });
		expect(row.status).toBe("succeeded");
		const [first, repair] = emulatedUsage();
		expect(emulator.calls).toHaveLength(2);
		expect(row.input_tokens).toBe((first?.inputTokens ?? 0) + (repair?.inputTokens ?? 0));
		expect(row.output_tokens).toBe((first?.outputTokens ?? 0) + (repair?.outputTokens ?? 0));
		// The repair's prompt carries the first answer back: it costs more input than the first call.
		expect(repair?.inputTokens ?? 0).toBeGreaterThan(first?.inputTokens ?? 0);
	});

	it("an answer the job fails on (empty) still counts: the failed job has its tokens", async () => {
		emulator.inject({ code: "empty", times: 1 });
		const { row } = await captionOn(SCOUT);
		expect(row).toMatchObject({ status: "failed", error_code: "model_error" });
		const [reported] = emulatedUsage();
		expect(reported).not.toBeNull();
		expect((await jobJson(row.id)).usage).toEqual({
			input_tokens: reported?.inputTokens,
			output_tokens: reported?.outputTokens,
		});
	});

	it("a failed call adds nothing: after a fallback only the answering model's tokens count", async () => {
		emulator.inject({ model: MOONDREAM, code: 3006, times: 1 });
		const { row } = await captionOn(`${MOONDREAM},${SCOUT}`);
		expect(row).toMatchObject({ status: "succeeded", model: SCOUT });
		const reported = emulatedUsage();
		expect(reported[0]).toBeNull();
		expect({ input: row.input_tokens, output: row.output_tokens }).toEqual({
			input: reported[1]?.inputTokens,
			output: reported[1]?.outputTokens,
		});
	});

	it("an attempt given back to the queue keeps its calls' tokens: the next attempt adds to them", async () => {
		// The first answer fails validation and its repair is rate limited: the attempt ends transient.
		emulator.inject({ code: "invalid_output", times: 1 });
		emulator.inject({ code: 3040, times: 1, prompt: "Your previous answer was not accepted" });
		const first = await captionOn(SCOUT, { output: "tags" });
		expect(first.row.status).toBe("queued");
		const [answered] = emulatedUsage();
		expect({ input: first.row.input_tokens, output: first.row.output_tokens }).toEqual({
			input: answered?.inputTokens,
			output: answered?.outputTokens,
		});

		await runConsumer([first.notification], { env: { MODEL_CHAIN: SCOUT }, attempts: 2 });
		const row = await onlyJob(first.key);
		expect(row.status).toBe("succeeded");
		const all = emulatedUsage().filter((u) => u !== null);
		expect(all).toHaveLength(2);
		expect(row.input_tokens).toBe(all.reduce((sum, u) => sum + u.inputTokens, 0));
		expect(row.output_tokens).toBe(all.reduce((sum, u) => sum + u.outputTokens, 0));
	});

	it("a call that answered counts though a later step of its attempt throws: the repair's slot fails, the job is queued with the first call's tokens", async () => {
		emulator.inject({ code: "invalid_output", times: 1 });
		const key = uniqueKey("usage.jpg");
		const notification = await upload(key, await fixture("small.jpg"), { output: "tags" });
		const run = await runConsumer([notification], {
			env: {
				MODEL_CHAIN: SCOUT,
				// Paced (tests run unpaced by default), so that the repair asks the scheduler for its slot alone.
				MODEL_RATE_LIMITS: "Text Generation=300",
				MODEL_SCHEDULER: failing(env.MODEL_SCHEDULER, "acquire", "scheduler restarted"),
			},
		});
		// The first answer was made and reported its tokens; the repair was never called.
		await queuedWithFirstAnswer(key, run);
	});

	it("an answer counts though the health registry fails to record it", async () => {
		const key = uniqueKey("usage.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		// The model is new to the registry: its first call is the probe, whose answer is recorded at once.
		const run = await runConsumer([notification], {
			env: { MODEL_CHAIN: SCOUT, MODEL_HEALTH: failing(env.MODEL_HEALTH, "record", "registry restarted") },
		});
		await queuedWithFirstAnswer(key, run);
	});
});
