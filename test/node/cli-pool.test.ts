/**
 * The waits of `r2c ... --wait`: a wait cut short by an event leaves no timer behind, since a
 * running timer holds the process open (`batch create --wait` once exited a minute after its batch
 * had ended, when its one-minute safety poll fired). vitest's fake timers count only the timers
 * made here: other files running in the same process keep real timers of their own.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sleepUnlessWoken } from "../../cli/pool.ts";

beforeEach(() => {
	vi.useFakeTimers();
});
afterEach(() => {
	vi.useRealTimers();
});

describe("sleepUnlessWoken", () => {
	it("returns when woken and clears its timer", async () => {
		await sleepUnlessWoken(Promise.resolve(), 60_000);
		expect(vi.getTimerCount()).toBe(0);
	});

	it("returns when the time has passed if nothing wakes it, and clears nothing else", async () => {
		const other = setTimeout(() => {}, 60_000);
		const slept = sleepUnlessWoken(new Promise(() => {}), 20);
		expect(vi.getTimerCount()).toBe(2);
		await vi.advanceTimersByTimeAsync(20);
		await slept;
		expect(vi.getTimerCount()).toBe(1);
		clearTimeout(other);
	});
});
