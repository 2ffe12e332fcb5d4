/**
 * GET /v1/stats and /v1/stats/series read a bounded number of rows (D1's meta.rows_read, summed
 * over their statements) whatever the number of jobs: counters, not a scan per request.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { PERCENTILE_SAMPLE_ROWS, type RowsMeter } from "../../workers/status/jobs/stat-counters";
import { ACTIVE_BATCHES_SCANNED, readStats } from "../../workers/status/jobs/stats";
import { readStatsSeries, SERIES_WINDOWS, type SeriesWindow } from "../../workers/status/jobs/stats-series";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";

describe("stats read a bounded number of rows", () => {
	const JOBS = 6000;
	const prefix = uniqueKey("many/");
	beforeAll(async () => {
		const now = Date.now();
		await insertJobs(
			Array.from({ length: JOBS }, (_, i) => ({
				key: `${prefix}${i}`,
				status: i % 10 === 0 ? ("failed" as const) : ("succeeded" as const),
				created_at: now - 60_000,
				completed_at: now - 30_000 - (i % 1000),
				inference_ms: 10 + (i % 100),
			})),
		);
		// The prefix's first stats request counts it once (as creating a key for it would).
		await readStats(env.DB, prefix, []);
	}, 120_000);

	// Every statement's rows examined: counts, counters, the batches scanned, the percentile
	// sample, and the buckets of the three windows (10 + 120 + 96) or of a series.
	const bound = PERCENTILE_SAMPLE_ROWS + ACTIVE_BATCHES_SCANNED + 500;

	it("GET /v1/stats, for the admin and for a scoped key, whatever the number of jobs", async () => {
		for (const scope of [null, prefix]) {
			const meter: RowsMeter = { rowsRead: 0 };
			const stats = await readStats(env.DB, scope, [], Date.now(), meter);
			expect(stats.counts.total).toBeGreaterThanOrEqual(JOBS);
			expect(stats.windows[0]?.completed).toBeGreaterThanOrEqual(JOBS);
			expect(stats.windows[0]?.inference_ms.p50).not.toBeNull();
			expect(meter.rowsRead).toBeLessThanOrEqual(bound);
			expect(meter.rowsRead).toBeLessThan(JOBS);
		}
	});

	it("GET /v1/stats/series, every window", async () => {
		for (const window of Object.keys(SERIES_WINDOWS) as SeriesWindow[]) {
			const meter: RowsMeter = { rowsRead: 0 };
			const series = await readStatsSeries(env.DB, window, prefix, Date.now(), meter);
			expect(series.points.reduce((n, p) => n + p.completed, 0)).toBe(JOBS);
			expect(meter.rowsRead).toBeLessThanOrEqual(bound);
		}
	});
});
