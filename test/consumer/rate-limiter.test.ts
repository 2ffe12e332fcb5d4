import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { type RatePolicy, reserveSlot } from "../../shared/gcra";
import { emulator } from "../../shared/models/emulator";
import { pacingRate } from "../../shared/models/rate-limits";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { MISTRAL, MOONDREAM, resetModels, UFORM } from "../support/models";
import { jobsForKey, onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

/** One slot a second, three at once after an idle spell, never more than five seconds ahead. */
const POLICY: RatePolicy = { requestsPerMinute: 60, burst: 3, maxWaitMs: 5000 };

describe("the slot limiter (GCRA) the lane scheduler and the API's limits pace by", () => {
	it("lets a burst through, then spaces calls by 60 000 / rpm ms", () => {
		let tat = 0;
		const waits: (number | string)[] = [];
		for (let i = 0; i < 9; i++) {
			const next = reserveSlot(tat, 0, POLICY);
			tat = next.tat;
			const r = next.reservation;
			waits.push(r.kind === "slot" ? r.waitMs : `retry ${r.retryAfterMs}`);
		}
		expect(waits).toEqual([0, 0, 0, 1000, 2000, 3000, 4000, 5000, "retry 6000"]);
	});

	it("a refused slot is not reserved, and an idle limiter starts again at once", () => {
		const full = reserveSlot(10_000, 0, POLICY);
		expect(full).toEqual({ reservation: { kind: "refused", retryAfterMs: 8000 }, tat: 10_000 });
		expect(reserveSlot(10_000, 60_000, POLICY)).toEqual({ reservation: { kind: "slot", waitMs: 0 }, tat: 61_000 });
	});

	it("the Durable Object hands out consecutive slots to concurrent callers", async () => {
		// The per-key API limiter is one such Durable Object.
		const limiter = env.API_RATE_LIMITER.getByName(uniqueKey("limiter"));
		const reservations = await Promise.all(Array.from({ length: 5 }, () => limiter.reserve(POLICY)));
		const waits = reservations.map((r) => (r.kind === "slot" ? r.waitMs : -1)).sort((a, b) => a - b);
		// Each caller got its own slot: three of the burst, then one and two seconds ahead (give or take the clock).
		expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
		expect(waits[3]).toBeGreaterThan(900);
		expect(waits[4]).toBeGreaterThan(1900);
	});
});

describe("the pace of a limit", () => {
	it("leaves room for the burst and a 2 % margin, so that no minute holds more calls than the limit", () => {
		expect(pacingRate(720, 5)).toBe(700);
		expect(pacingRate(300, 5)).toBe(289);
		for (const [limit, burst] of [
			[720, 5],
			[300, 5],
			[300, 10],
			[150, 3],
		] as const) {
			expect(pacingRate(limit, burst) + burst).toBeLessThanOrEqual(limit);
		}
	});
});

describe("pacing keeps the consumer under each task type's rate limit", () => {
	// The emulator's minute lasts 1 s (time scale 60): 6 Image-to-Text and 3 Text Generation calls
	// per second. The consumer's limits are chosen so that its pace plus its burst of 1 stays within
	// those per second: Text Generation at 116 per minute, Image-to-Text at 234.
	const limited = { EMULATOR_RATE_LIMITS: "Image-to-Text=6, Text Generation=3", EMULATOR_TIME_SCALE: "60" };
	const paced = { MODEL_RATE_LIMITS: "Image-to-Text=240, Text Generation=120", MODEL_BURST: "1" };

	async function uploads(n: number) {
		const jpeg = await fixture("small.jpg");
		const keys = Array.from({ length: n }, () => uniqueKey("paced.jpg"));
		return { keys, notifications: await Promise.all(keys.map((key) => upload(key, jpeg))) };
	}

	/** The most calls of `task`'s models that started within any one emulated minute (1 s). */
	function busiestSecond(models: string[]): number {
		const times = emulator.calls.filter((c) => models.includes(c.model)).map((c) => c.at);
		return Math.max(0, ...times.map((t) => times.filter((u) => u > t - 1000 && u <= t).length));
	}

	it("a chain whose Image-to-Text model is retired falls back to a chat model paced at its own limit: no 3021", async () => {
		const { keys, notifications } = await uploads(10);
		const { ids, result } = await runConsumer(notifications, {
			env: { ...limited, ...paced, MODEL_CHAIN: `${UFORM},${MISTRAL}` },
		});
		expect(result.retryMessages).toEqual([]);
		expect([...result.explicitAcks].sort()).toEqual([...ids].sort());
		for (const key of keys) expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: MISTRAL });
		// One probe of the retired model, then ten chat calls, none refused for the rate.
		expect(emulator.callsTo(UFORM)).toBe(1);
		expect(emulator.callsTo(MISTRAL)).toBe(10);
		expect(emulator.calls.filter((c) => c.code === 3021)).toEqual([]);
		expect(busiestSecond([MISTRAL])).toBeLessThanOrEqual(3);
	});

	it("each task type has its own limiter: Image-to-Text calls are not held back by the chat model's pace", async () => {
		const { keys, notifications } = await uploads(12);
		// Half the images go to moondream (Image-to-Text), half straight to mistral (Text Generation).
		const [toMoondream, toMistral] = [notifications.slice(0, 6), notifications.slice(6)];
		await Promise.all([
			runConsumer(toMoondream, { env: { ...limited, ...paced, MODEL_CHAIN: MOONDREAM } }),
			runConsumer(toMistral, { env: { ...limited, ...paced, MODEL_CHAIN: MISTRAL } }),
		]);
		const models = await Promise.all(keys.map(async (key) => (await onlyJob(key)).model));
		expect(models).toEqual([...Array(6).fill(MOONDREAM), ...Array(6).fill(MISTRAL)]);
		expect(emulator.calls.filter((c) => c.code === 3021)).toEqual([]);
		expect(busiestSecond([MISTRAL])).toBeLessThanOrEqual(3);
		expect(busiestSecond([MOONDREAM])).toBeLessThanOrEqual(6);
		// Moondream's six calls were spread at its own pace (3.9 a second), not the chat model's (1.9).
		const moondream = emulator.calls.filter((c) => c.model === MOONDREAM).map((c) => c.at);
		const mistral = emulator.calls.filter((c) => c.model === MISTRAL).map((c) => c.at);
		const span = (times: number[]) => Math.max(...times) - Math.min(...times);
		expect(span(moondream)).toBeLessThan(span(mistral));
	});

	it("without pacing the same traffic meets the limit and retries messages", async () => {
		const { notifications } = await uploads(10);
		const { result } = await runConsumer(notifications, {
			env: { ...limited, MODEL_RATE_LIMITS: "off", MODEL_CHAIN: MOONDREAM },
		});
		expect(result.retryMessages.length).toBeGreaterThan(0);
		expect(emulator.calls.filter((c) => c.code === 3021).length).toBeGreaterThan(0);
	});

	it("a slot beyond MODEL_MAX_WAIT_SECONDS puts the job back in the queue and retries after the wait", async () => {
		const { keys, notifications } = await uploads(3);
		const { ids, result, retryDelays } = await runConsumer(notifications, {
			// A limit of 3 a minute with a burst of 1 paces one call a minute: the second and third
			// slots are 60 and 120 s away, beyond the 30 s limit.
			env: { MODEL_RATE_LIMITS: "Image-to-Text=3", MODEL_BURST: "1", MODEL_MAX_WAIT_SECONDS: "30" },
		});
		expect(result.retryMessages).toHaveLength(2);
		for (const { msgId } of result.retryMessages) {
			expect(ids).toContain(msgId);
			expect(retryDelays.get(msgId)).toBeGreaterThanOrEqual(59);
		}
		const statuses = (await Promise.all(keys.map(async (key) => (await jobsForKey(key))[0]?.status))).sort();
		expect(statuses).toEqual(["queued", "queued", "succeeded"]);
		expect(emulator.calls).toHaveLength(1);
	});
});
