/** shared/queue/gather.ts: a queue batch's writes gathered into one round trip. */
import { describe, expect, it } from "vitest";
import { Gather } from "../../shared/queue/gather";

/** A gather whose writes are recorded: each group written, in order. */
function recording(holdMs: number) {
	const groups: number[][] = [];
	const gather = new Gather<number, string>(async (asks) => {
		groups.push(asks);
		return asks.map((a) => `written ${a}`);
	}, holdMs);
	return { gather, groups };
}

describe("Gather", () => {
	it("writes once every participant owed has asked or left, and answers each ask", async () => {
		const { gather, groups } = recording(60_000);
		const [a, b, c, d] = [gather.join(), gather.join(), gather.join(), gather.join()];
		const answers = [a.ask(1), b.ask(2)];
		c.leave();
		await new Promise((resolve) => setTimeout(resolve, 20));
		expect(groups).toEqual([]);
		answers.push(d.ask(4));
		expect(await Promise.all(answers)).toEqual(["written 1", "written 2", "written 4"]);
		expect(groups).toEqual([[1, 2, 4]]);
		// A ticket that asked leaves without effect; a later participant makes a group of its own.
		a.leave();
		expect(await gather.join().ask(5)).toBe("written 5");
		expect(groups).toEqual([[1, 2, 4], [5]]);
	});

	it("writes one group for participants that join in the turn of the first ask (one that asks before any await)", async () => {
		const { gather, groups } = recording(60_000);
		// As a queue batch starts its messages: each runs up to its first await before the next joins.
		const a = gather.join();
		const first = a.ask(1);
		const b = gather.join();
		const second = b.ask(2);
		expect(await Promise.all([first, second])).toEqual(["written 1", "written 2"]);
		expect(groups).toEqual([[1, 2]]);
	});

	it("writes what it has after holdMs when a participant is held up", async () => {
		const { gather, groups } = recording(50);
		const [a, b] = [gather.join(), gather.join()];
		const started = Date.now();
		expect(await a.ask(1)).toBe("written 1");
		expect(Date.now() - started).toBeGreaterThanOrEqual(45);
		expect(groups).toEqual([[1]]);
		expect(await b.ask(2)).toBe("written 2");
		expect(groups).toEqual([[1], [2]]);
	});

	it("gives every ask of a group the write's error, and refuses a second ask of one ticket", async () => {
		const gather = new Gather<number, string>(async () => {
			throw new Error("D1 is down");
		}, 60_000);
		const [a, b] = [gather.join(), gather.join()];
		const results = await Promise.allSettled([a.ask(1), b.ask(2)]);
		expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
		await expect(a.ask(3)).rejects.toThrow(/at most once/);
	});
});
