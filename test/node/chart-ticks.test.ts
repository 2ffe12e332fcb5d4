/**
 * The y-axis ticks of the dashboard's charts (`yTicks` in charts.js), labelled by the formats the
 * stats view gives them: each label different from the others and saying the tick's value, also
 * where the values are smaller than what the format shows (inference times under a millisecond,
 * a job or two an hour).
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { root } from "../../scripts/lib/wrangler.ts";

type Format = (value: number) => string;

// The dashboard's modules are plain JavaScript, typechecked by tsconfig.dashboard.json: typed here by hand.
const dashboard = (file: string) => pathToFileURL(path.join(root, "workers/status/assets/dashboard", file)).href;
const { yTicks }: { yTicks: (max: number, format: Format) => number[] } = await import(dashboard("charts.js"));
const { duration }: { duration: Format } = await import(dashboard("dom.js"));

/** The stats view's throughput format (views/stats.js). */
const perMinute: Format = (v) => `${v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1)}/min`;

/** The value a label says: "250 ms", "1.50 s", "1 min 35 s", "0.5/min". */
function said(label: string): number {
	const [, n = "", unit = "", seconds = "0"] = /^([\d.]+) ?(ms|s|min|\/min)(?: (\d+) s)?$/.exec(label) ?? [];
	const scale = ({ ms: 1, s: 1000, min: 60_000, "/min": 1 } as Record<string, number>)[unit];
	if (scale === undefined) throw new Error(`not a label of the formats: ${label}`);
	return Number(n) * scale + Number(seconds) * 1000;
}

describe("the charts' y axis", () => {
	it("labels inference times of 0-1 ms with distinct whole milliseconds", () => {
		for (const max of [0.3, 0.7, 1]) {
			const ticks = yTicks(max, duration);
			expect(ticks.map(duration), `max ${max}`).toEqual(["0 ms", "1 ms", "2 ms"]);
		}
	});

	it("gives three distinct labels, each the tick's own value, the top at or above the largest value", () => {
		const cases: [Format, number[]][] = [
			[duration, [0, 0.01, 0.5, 1.5, 3, 7, 420, 999, 1800, 12_000, 95_000]],
			[perMinute, [0, 0.04, 0.07, 0.1, 0.3, 2.5, 9, 12, 30]],
		];
		for (const [format, maxima] of cases) {
			for (const max of maxima) {
				const ticks = yTicks(max, format);
				const labels = ticks.map(format);
				expect(new Set(labels).size, `${labels.join(" / ")} for ${max}`).toBe(3);
				expect(ticks.at(-1), `top for ${max}`).toBeGreaterThanOrEqual(max);
				// A label says the value it stands at (no 2.5 ms shown as "3 ms"): the ticks are round steps
				// that the format shows exactly.
				expect(labels.map(said), `${labels.join(" / ")} for ${max}`).toEqual(ticks.map((t) => expect.closeTo(t, 9)));
			}
		}
	});
});
