/**
 * The waits of `r2c ... --wait`: a wait cut short by an event leaves no timer behind, since a
 * running timer holds the process open (`batch create --wait` once exited a minute after its batch
 * had ended, when its one-minute safety poll fired).
 */
import { describe, expect, it } from "vitest";
import { sleepUnlessWoken } from "../../cli/pool.ts";

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("sleepUnlessWoken", () => {
	it("returns when woken and clears its timer", async () => {
		const before = timers();
		await sleepUnlessWoken(Promise.resolve(), 60_000);
		expect(timers()).toBe(before);
	});

	it("returns when the time has passed if nothing wakes it, and clears nothing else", async () => {
		const other = setTimeout(() => {}, 60_000);
		const before = timers();
		await sleepUnlessWoken(new Promise(() => {}), 20);
		expect(timers()).toBe(before);
		clearTimeout(other);
	});
});
