/**
 * The lease broker that lends the node project's shared stack (test/node/support/lease-broker.ts):
 * made once for the files that hold it at the same time, unmade only once every lease is back and
 * nobody asked again meanwhile, made afresh for a file that asks later. A counter stands in for the
 * stack.
 */
import { afterEach, describe, expect, it } from "vitest";
import { until } from "../../scripts/lib/dev-stack.ts";
import { type LeaseBroker, startLeaseBroker } from "./support/lease-broker.ts";

const IDLE_MS = 200;
let broker: LeaseBroker | undefined;
afterEach(() => broker?.close());

async function counted({ lent = true } = {}) {
	const log: string[] = [];
	let made = 0;
	broker = await startLeaseBroker(
		"/thing",
		async () => {
			made++;
			log.push(`make ${made}`);
			return { n: made };
		},
		lent
			? {
					unmake: async (thing) => {
						log.push(`unmake ${thing.n}`);
					},
					idleMs: IDLE_MS,
				}
			: undefined,
	);
	const url = broker.url;
	return {
		log,
		ask: async () => ((await (await fetch(`${url}/thing`, { method: "POST" })).json()) as { n: number }).n,
		release: async () => void (await fetch(`${url}/thing/release`, { method: "POST" })),
	};
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("the lease broker", () => {
	it("makes one thing for leases held together, and unmakes it only after the last is back and the idle time passed", async () => {
		const { log, ask, release } = await counted();
		expect(await Promise.all([ask(), ask()])).toEqual([1, 1]);
		await release();
		await pause(IDLE_MS * 2);
		// One lease is still held.
		expect(log).toEqual(["make 1"]);
		await release();
		await until("the thing to be unmade", 5_000, async () => (log.length === 2 ? true : undefined));
		expect(log).toEqual(["make 1", "unmake 1"]);
	});

	it("keeps the thing for an ask within the idle time, and makes it afresh for an ask after it was unmade", async () => {
		const { log, ask, release } = await counted();
		expect(await ask()).toBe(1);
		await release();
		expect(await ask()).toBe(1);
		await pause(IDLE_MS * 2);
		expect(log).toEqual(["make 1"]);
		await release();
		await until("the thing to be unmade", 5_000, async () => (log.length === 2 ? true : undefined));
		expect(await ask()).toBe(2);
		expect(log).toEqual(["make 1", "unmake 1", "make 2"]);
	});

	it("without lending, keeps what it made after every lease is back, for every later ask", async () => {
		const { log, ask, release } = await counted({ lent: false });
		expect(await ask()).toBe(1);
		await release();
		await pause(IDLE_MS * 2);
		expect(await ask()).toBe(1);
		expect(log).toEqual(["make 1"]);
	});

	it("unmakes what is made when closed, leases held or not", async () => {
		const { log, ask } = await counted();
		await ask();
		await broker?.close();
		broker = undefined;
		expect(log).toEqual(["make 1", "unmake 1"]);
	});
});
