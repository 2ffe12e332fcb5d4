/** GET /v1/stats/series: finished jobs and inference percentiles per bucket, checked on known rows. */
import { describe, expect, it } from "vitest";
import { StatsSeries } from "../../workers/status/jobs/stats-series";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";
import { call, createKey, invalidFields, parsed } from "./support";

const MINUTE = 60_000;

describe("GET /v1/stats/series", () => {
	it("cuts the last hour into 60 one-minute buckets with counts and nearest-rank percentiles", async () => {
		const prefix = uniqueKey("series/");
		const now = Date.now();
		// The current minute's bucket starts here; a bucket `n` minutes earlier starts n minutes before.
		const current = Math.floor(now / MINUTE) * MINUTE;
		const at = (minutesAgo: number) => current - minutesAgo * MINUTE + 1000;
		await insertJobs([
			// 10 minutes ago: 20 jobs, inference 10..200 ms, 2 of them failed.
			...Array.from({ length: 20 }, (_, i) => ({
				key: `${prefix}a${i + 1}`,
				created_at: at(10) - 500,
				status: i < 2 ? ("failed" as const) : ("succeeded" as const),
				inference_ms: (i + 1) * 10,
				completed_at: at(10),
			})),
			// 3 minutes ago: one job without an inference time (failed before the model).
			{ key: `${prefix}b`, created_at: at(3), status: "failed", completed_at: at(3) },
			// 2 hours ago: outside the window.
			{
				key: `${prefix}old`,
				created_at: now - 120 * MINUTE,
				status: "succeeded",
				inference_ms: 5,
				completed_at: now - 120 * MINUTE,
			},
		]);

		const key = await createKey(prefix);
		const res = await call("GET", "/v1/stats/series?window=1h", { token: key.token });
		expect(res.status).toBe(200);
		const series = await parsed(res, StatsSeries);
		expect(series).toMatchObject({ prefix, window: "1h", bucket_seconds: 60 });
		expect(series.points).toHaveLength(60);
		expect(Date.parse(series.points.at(-1)?.start ?? "")).toBe(current);
		const byMinutesAgo = (n: number) => series.points[59 - n];
		expect(byMinutesAgo(10)).toEqual({
			start: new Date(current - 10 * MINUTE).toISOString(),
			completed: 20,
			succeeded: 18,
			failed: 2,
			inference_ms: { p50: 100, p95: 190, p99: 200 },
		});
		expect(byMinutesAgo(3)).toMatchObject({
			completed: 1,
			failed: 1,
			inference_ms: { p50: null, p95: null, p99: null },
		});
		const others = series.points.filter((_, i) => i !== 49 && i !== 56);
		expect(others.every((p) => p.completed === 0 && p.inference_ms.p50 === null)).toBe(true);
	});

	it("defaults to the last hour, offers 15m and 24h, and refuses other windows", async () => {
		const series = await parsed(await call("GET", "/v1/stats/series"), StatsSeries);
		expect(series).toMatchObject({ window: "1h", bucket_seconds: 60, prefix: null });
		const short = await parsed(await call("GET", "/v1/stats/series?window=15m"), StatsSeries);
		expect([short.bucket_seconds, short.points.length]).toEqual([30, 30]);
		const day = await parsed(await call("GET", "/v1/stats/series?window=24h"), StatsSeries);
		expect([day.bucket_seconds, day.points.length]).toEqual([900, 96]);
		expect(await invalidFields(await call("GET", "/v1/stats/series?window=7d"))).toEqual(["window"]);
		expect((await call("GET", "/v1/stats/series", { token: null })).status).toBe(401);
	});
});
