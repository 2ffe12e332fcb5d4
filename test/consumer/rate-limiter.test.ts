import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { type RatePolicy, reserveSlot } from "../../workers/consumer/model-rate-limiter";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { jobsForKey, runConsumer } from "../support/queue";

beforeEach(() => emulator.reset());

/** One slot a second, three at once after an idle spell, never more than five seconds ahead. */
const POLICY: RatePolicy = { requestsPerMinute: 60, burst: 3, maxWaitMs: 5000 };

describe("the model rate limiter (GCRA)", () => {
	it("lets a burst through, then spaces calls by 60 000 / rpm ms", () => {
		let tat = 0;
		const waits: (number | string)[] = [];
		for (let i = 0; i < 9; i++) {
			const next = reserveSlot(tat, 0, POLICY);
			tat = next.tat;
			const r = next.reservation;
			waits.push("waitMs" in r ? r.waitMs : `retry ${r.retryAfterMs}`);
		}
		expect(waits).toEqual([0, 0, 0, 1000, 2000, 3000, 4000, 5000, "retry 6000"]);
	});

	it("a refused slot is not reserved, and an idle limiter starts again at once", () => {
		const full = reserveSlot(10_000, 0, POLICY);
		expect(full).toEqual({ reservation: { retryAfterMs: 8000 }, tat: 10_000 });
		expect(reserveSlot(10_000, 60_000, POLICY)).toEqual({ reservation: { waitMs: 0 }, tat: 61_000 });
	});

	it("the Durable Object hands out consecutive slots to concurrent callers", async () => {
		const limiter = env.MODEL_RATE_LIMITER.getByName(uniqueKey("limiter"));
		const reservations = await Promise.all(Array.from({ length: 5 }, () => limiter.reserve(POLICY)));
		const waits = reservations.map((r) => ("waitMs" in r ? r.waitMs : -1)).sort((a, b) => a - b);
		// Each caller got its own slot: three of the burst, then one and two seconds ahead (give or take the clock).
		expect(waits.slice(0, 3)).toEqual([0, 0, 0]);
		expect(waits[3]).toBeGreaterThan(900);
		expect(waits[4]).toBeGreaterThan(1900);
	});
});

describe("pacing keeps the consumer under the model's rate limit", () => {
	// The emulator allows 6 calls per 1 s window (6 per minute, time scaled by 60).
	const limited = { EMULATOR_REQUESTS_PER_MINUTE: "6", EMULATOR_TIME_SCALE: "60" };

	async function uploads(n: number) {
		const jpeg = await fixture("small.jpg");
		const keys = Array.from({ length: n }, () => uniqueKey("paced.jpg"));
		return { keys, notifications: await Promise.all(keys.map((key) => upload(key, jpeg))) };
	}

	it("with MODEL_REQUESTS_PER_MINUTE below the limit, a batch larger than the limit succeeds without a 3021", async () => {
		const { keys, notifications } = await uploads(10);
		const { ids, result } = await runConsumer(notifications, {
			// 3 calls a second, at most 2 at once: never 6 within one second, even with timer jitter.
			env: { ...limited, MODEL_REQUESTS_PER_MINUTE: "180", MODEL_BURST: "2" },
		});
		expect(result.retryMessages).toEqual([]);
		expect([...result.explicitAcks].sort()).toEqual([...ids].sort());
		expect(emulator.calls.map((c) => c.ok)).toEqual(Array(10).fill(true));
		for (const key of keys) expect((await jobsForKey(key))[0]?.status).toBe("succeeded");
	});

	it("without pacing the same batch meets the limit and retries messages", async () => {
		const { notifications } = await uploads(10);
		const { result } = await runConsumer(notifications, { env: { ...limited, MODEL_REQUESTS_PER_MINUTE: "0" } });
		expect(result.retryMessages.length).toBe(4);
		expect(emulator.calls.filter((c) => !c.ok)).toHaveLength(4);
	});

	it("a slot beyond MODEL_MAX_WAIT_SECONDS puts the job back in the queue and retries after the wait", async () => {
		const { keys, notifications } = await uploads(3);
		const { ids, result, retryDelays } = await runConsumer(notifications, {
			// One call a minute: the second and third slots are 60 and 120 s away, beyond the 30 s limit.
			env: { MODEL_REQUESTS_PER_MINUTE: "1", MODEL_BURST: "1", MODEL_MAX_WAIT_SECONDS: "30" },
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
