/**
 * The lane scheduler (shared/scheduling/): who gets each rate limit's next slot. The policy is
 * pure and tested on its own; the Durable Object is tested through its RPC with a fresh instance
 * per test and low paces (10 slots a second, or one per 400 ms where a test needs a wide interval), recording the order in which callers get slots.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
	type Grant,
	type Lane,
	type LimitSpec,
	SCHEDULER_NAME,
	type SlotRequest,
	Slots,
} from "../../shared/scheduling/lanes";
import { chooseWaiter, type RecentGrant } from "../../shared/scheduling/policy";
import { readSettings } from "../../workers/consumer/config";
import { captionRoute } from "../../workers/consumer/lane-route";
import { uniqueKey } from "../support/fixtures";

const IT: LimitSpec = { name: "Image-to-Text", perMinute: 610, pacedPerMinute: 600 };
const TG: LimitSpec = { name: "Text Generation", perMinute: 310, pacedPerMinute: 300 };

/** One slot per 400 ms: a caller asking 30 ms after another is well inside the interval on a loaded machine. */
const SLOW: LimitSpec = { name: "slow pace", perMinute: 150, pacedPerMinute: 150 };

const scheduler = () => env.MODEL_SCHEDULER.getByName(uniqueKey("scheduler"));

function request(lane: Lane, key: string | null, limits: LimitSpec[] = [IT]): SlotRequest {
	return { lane, key, limits, burst: 1, maxWaitMs: 20_000, minBatchShare: 0.2, since: Date.now() };
}

/** Asks for every request at once; returns the labels in the order their slots came, with the grants. */
async function grantOrder(s: ReturnType<typeof scheduler>, asks: { label: string; request: SlotRequest }[]) {
	const order: { label: string; grant: Grant; at: number }[] = [];
	await Promise.all(
		asks.map(async ({ label, request: r }) => {
			const grant = await s.acquire(r);
			order.push({ label, grant, at: Date.now() });
		}),
	);
	return order;
}

const recent = (lane: Lane, n: number, key: string | null = null): RecentGrant[] =>
	Array.from({ length: n }, () => ({ at: Date.now(), lane, limit: IT.name, key }));

describe("the lane policy", () => {
	const waiter = (seq: number, lane: Lane, key: string | null = null) => ({ seq, lane, key, limits: [IT.name] });

	it("serves the interactive lane first while the batch lane has had its minimum share", () => {
		const waiters = [waiter(1, "batch"), waiter(2, "batch"), waiter(3, "interactive")];
		expect(chooseWaiter(waiters, IT.name, [...recent("batch", 2), ...recent("interactive", 8)], 0.2)?.seq).toBe(3);
	});

	it("gives the batch lane the slot when it took less than its minimum share of the last minute", () => {
		const waiters = [waiter(1, "batch"), waiter(2, "interactive")];
		expect(chooseWaiter(waiters, IT.name, [...recent("batch", 1), ...recent("interactive", 9)], 0.2)?.seq).toBe(1);
	});

	it("gives batch slots to the key that took the fewest, whatever the arrival order", () => {
		const waiters = [waiter(1, "batch", "key_a"), waiter(2, "batch", "key_a"), waiter(3, "batch", "key_b")];
		expect(chooseWaiter(waiters, IT.name, recent("batch", 3, "key_a"), 0.2)?.seq).toBe(3);
		expect(chooseWaiter(waiters, IT.name, recent("batch", 3, "key_b"), 0.2)?.seq).toBe(1);
	});

	it("offers a slot only to waiters that accept its limit", () => {
		expect(chooseWaiter([waiter(1, "interactive")], TG.name, [], 0.2)).toBeUndefined();
	});
});

describe("the lane scheduler Durable Object", () => {
	it("a caption of the interactive lane that arrives while twenty batch captions wait gets the next slot", async () => {
		const s = scheduler();
		const batch = Array.from({ length: 20 }, (_, i) => ({ label: `batch-${i}`, request: request("batch", null) }));
		const pending = grantOrder(s, batch);
		await new Promise((resolve) => setTimeout(resolve, 250));
		const interactive = await s.acquire(request("interactive", null));
		const afterInteractive = Date.now();
		const order = await pending;
		expect(interactive).toEqual({ kind: "slot", limit: IT.name });
		const batchBefore = order.filter((o) => o.at <= afterInteractive).length;
		// At 10 slots a second, about three batch slots went before it; without priority it would be last.
		expect(batchBefore).toBeLessThanOrEqual(5);
		expect(order.every((o) => o.grant.kind === "slot")).toBe(true);
	});

	it("keeps the batch lane's minimum share while interactive captions keep coming", async () => {
		const s = scheduler();
		const asks = [
			...Array.from({ length: 10 }, (_, i) => ({ label: `batch-${i}`, request: request("batch", null) })),
			...Array.from({ length: 30 }, (_, i) => ({ label: `interactive-${i}`, request: request("interactive", null) })),
		];
		const order = await grantOrder(s, asks);
		const firstTwenty = order.slice(0, 20).map((o) => o.label);
		const batchInFirstTwenty = firstTwenty.filter((l) => l.startsWith("batch")).length;
		// 20 % of the slots: about four of the first twenty, never none.
		expect(batchInFirstTwenty).toBeGreaterThanOrEqual(3);
		expect(batchInFirstTwenty).toBeLessThanOrEqual(6);
	});

	it("hands batch slots round the keys: a key whose captions arrived last is not served last", async () => {
		const s = scheduler();
		const asks = [
			...Array.from({ length: 10 }, (_, i) => ({ label: `a-${i}`, request: request("batch", "key_a") })),
			...Array.from({ length: 10 }, (_, i) => ({ label: `b-${i}`, request: request("batch", "key_b") })),
		];
		const order = await grantOrder(s, asks);
		const firstTen = order.slice(0, 10).map((o) => o.label[0]);
		expect(firstTen.filter((k) => k === "a")).toHaveLength(5);
		expect(firstTen.filter((k) => k === "b")).toHaveLength(5);
	});

	it("a spillover caption takes a slot of either limit, so both limits' paces add up", async () => {
		const s = scheduler();
		const started = Date.now();
		const asks = Array.from({ length: 30 }, (_, i) => ({ label: `s-${i}`, request: request("batch", null, [IT, TG]) }));
		const order = await grantOrder(s, asks);
		const elapsed = (Math.max(...order.map((o) => o.at)) - started) / 1000;
		const byLimit = (name: string) => order.filter((o) => o.grant.kind === "slot" && o.grant.limit === name).length;
		expect(byLimit(IT.name)).toBeGreaterThan(byLimit(TG.name));
		expect(byLimit(TG.name)).toBeGreaterThan(5);
		// 30 slots at 10 + 5 a second: about 2 s, where Image-to-Text alone needs 3.
		expect(30 / elapsed).toBeGreaterThan(IT.pacedPerMinute / 60);
	});

	it("a caller waits for a slot within its wait and is reported while it waits; one that cannot is told when to come back", async () => {
		const s = scheduler();
		// One slot every 2 s.
		const slow: LimitSpec = { name: "slow", perMinute: 30, pacedPerMinute: 30 };
		const ask = (maxWaitMs: number): SlotRequest => ({ ...request("batch", "key_w", [slow]), maxWaitMs });
		expect(await s.acquire(ask(100))).toEqual({ kind: "slot", limit: "slow" });
		const waiting = s.acquire({ ...ask(5000), since: Date.now() - 5000 });
		await new Promise((resolve) => setTimeout(resolve, 200));
		const figures = await s.stats();
		expect(figures.find((f) => f.lane === "batch" && f.task_type === "slow")).toMatchObject({
			waiting: 1,
			calls_last_minute: 1,
			share_last_minute: Math.round((1 / 30) * 1000) / 1000,
		});
		expect(figures.find((f) => f.lane === "batch")?.oldest_waiting_seconds).toBeGreaterThanOrEqual(5);
		// The next slot is about 2 s away and one caller is before it: 4 s, beyond a wait of 1 s.
		const refused = await s.acquire(ask(1000));
		expect(refused.kind).toBe("refused");
		if (refused.kind === "refused") expect(refused.retryAfterMs).toBeGreaterThan(3000);
		expect(await waiting).toEqual({ kind: "slot", limit: "slow" });
	});

	it("a grant of several slots takes an idle limit's burst in one answer, then no more than the pace, and an interactive caller still goes first", async () => {
		const s = scheduler();
		const burst = { ...request("batch", "key_g", [SLOW]), burst: 3 };
		const first = await s.acquireMany(burst, 10);
		expect(first).toEqual({ kind: "slots", limits: [SLOW.name, SLOW.name, SLOW.name] });
		const asked = Date.now();
		const order: string[] = [];
		const rest = s.acquireMany(burst, 7).then((grant) => {
			order.push("batch");
			return grant;
		});
		await new Promise((resolve) => setTimeout(resolve, 30));
		const interactive = s.acquire({ ...request("interactive", null, [SLOW]), burst: 3 }).then((grant) => {
			order.push("interactive");
			return grant;
		});
		expect(await interactive).toEqual({ kind: "slot", limit: SLOW.name });
		// Past the burst one slot per 400 ms: the batch's next answer is one slot, after the interactive one's.
		expect(await rest).toEqual({ kind: "slots", limits: [SLOW.name] });
		expect(order).toEqual(["interactive", "batch"]);
		expect(Date.now() - asked).toBeGreaterThanOrEqual(700);
	});

	it("two keys' batches asking for several slots each, under load, are served slot by slot round the keys", async () => {
		const s = scheduler();
		// At the slow pace: both keys ask again well inside one interval, even on a loaded machine (at
		// 100 ms a slot, key_a's next ask once found a slot free before key_b had asked, and took it).
		const ask = (key: string, n: number) => s.acquireMany({ ...request("batch", key, [SLOW]), burst: 2 }, n);
		// key_a takes the idle limit's burst: from here one slot per 400 ms, key_b's turn first.
		expect(await ask("key_a", 5)).toEqual({ kind: "slots", limits: [SLOW.name, SLOW.name] });
		const order: string[] = [];
		/** Asks for `n` slots, and again for the rest after each answer, as a queue batch does. */
		const take = async (key: string, n: number) => {
			for (let left = n; left > 0; ) {
				const grant = await ask(key, left);
				if (grant.kind !== "slots") throw new Error(`refused: ${JSON.stringify(grant)}`);
				order.push(...grant.limits.map(() => key));
				left -= grant.limits.length;
			}
		};
		await Promise.all([take("key_a", 3), take("key_b", 3)]);
		// key_b catches up with key_a's two; then the keys take turns (ties to the longest waiting).
		expect(order).toEqual(["key_b", "key_b", "key_a", "key_b", "key_a", "key_a"]);
	});

	it("a slot stream tells a batch its slots as they are handed out, at the pace and behind an interactive caller, and ends with the last", async () => {
		const s = scheduler();
		const stream = await s.slotStream({ ...request("batch", "key_s", [SLOW]), burst: 2 }, 5);
		const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
		const order: string[] = [];
		let text = "";
		const read = (async () => {
			for (let r = await reader.read(); !r.done; r = await reader.read()) {
				text += r.value;
				const lines = text.split("\n");
				text = lines.pop() ?? "";
				for (const line of lines) {
					const slots = Slots.parse(JSON.parse(line));
					order.push(slots.kind === "slots" ? `batch ${slots.limits.length}` : "refused");
				}
			}
		})();
		await new Promise((resolve) => setTimeout(resolve, 30));
		expect(await s.acquire({ ...request("interactive", null, [SLOW]), burst: 2 })).toEqual({
			kind: "slot",
			limit: SLOW.name,
		});
		order.push("interactive");
		const started = Date.now();
		await read;
		// The burst of two at once, the interactive caller's slot next, then the batch's three at 400 ms each.
		expect(order).toEqual(["batch 2", "interactive", "batch 1", "batch 1", "batch 1"]);
		expect(Date.now() - started).toBeGreaterThanOrEqual(1100);
	});
});

describe("a caption's route through the lanes (workers/consumer/lane-route.ts)", () => {
	it("a spillover caption in a language only some models write takes no slot of the limits of the others", async () => {
		const settings = readSettings({ ...env, MODEL_RATE_LIMITS: "Image-to-Text=720, Text Generation=300" });
		const shared = env.MODEL_SCHEDULER.getByName(SCHEDULER_NAME);
		const imageToText = async () =>
			(await shared.stats())
				.filter((f) => f.lane === "batch" && f.task_type === "Image-to-Text")
				.reduce((n, f) => n + f.calls_last_minute, 0);
		const before = await imageToText();
		const turn = { lane: "batch" as const, keyId: null, spillover: true, createdAt: Date.now() };
		const french = await captionRoute(env, settings, { ...turn, language: "fr" });
		// Only the models that write French, and no Image-to-Text slot taken for a model it will not call.
		expect(french.adapters.length).toBeGreaterThan(0);
		expect(french.adapters.every((a) => a.languages === "any")).toBe(true);
		expect(await imageToText()).toBe(before);
	});
});
