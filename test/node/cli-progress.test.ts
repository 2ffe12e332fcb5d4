/**
 * The progress line of `r2c upload --wait` and `r2c batch create --wait`: the ETA is the API's
 * (a batch's `eta_seconds`) when it gives one, unknown while it is null, and otherwise estimated
 * from the rate seen here.
 */
import { describe, expect, it } from "vitest";
import { summary } from "../../cli/progress.ts";

const at = (etaSeconds: number | null | undefined, perSecond = 2) =>
	summary({ total: 100, done: 40, counts: { succeeded: 40 }, etaSeconds }, perSecond);

describe("the progress line", () => {
	it("shows the batch's eta_seconds from the API", () => {
		expect(at(125)).toBe("40/100 | 2.0/s | ETA 2m05s | succeeded 40");
		expect(at(9)).toContain("ETA 9s");
	});

	it("shows ? while the API does not know yet (null), whatever the rate here", () => {
		expect(at(null)).toContain("ETA ?");
	});

	it("estimates from the rate when the API gives no ETA (uploads)", () => {
		// 60 left at 2/s.
		expect(at(undefined)).toContain("ETA 30s");
		expect(at(undefined, 0)).toContain("ETA ?");
	});

	it("is 0 s once everything has settled", () => {
		expect(summary({ total: 5, done: 5, counts: {}, etaSeconds: 300 }, 1)).toContain("ETA 0s");
	});
});
