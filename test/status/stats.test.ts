/** GET /v1/stats: counts by status and windowed throughput and percentiles, checked on known rows. */
import { describe, expect, it } from "vitest";
import { Stats } from "../../workers/status/jobs/stats";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";
import { call, createKey, parsed } from "./support";

describe("GET /v1/stats", () => {
	it("counts by status and computes p50/p95/p99 of inference time per window (nearest rank)", async () => {
		const prefix = uniqueKey("stats/");
		const now = Date.now();
		// 100 jobs finished 1 minute ago with inference 1..100 ms; 10 finished 2 hours ago with 1000 ms.
		const recent = now - 60_000;
		const old = now - 2 * 3_600_000;
		await insertJobs([
			...Array.from({ length: 100 }, (_, i) => ({
				key: `${prefix}${i + 1}`,
				created_at: recent - 500,
				status: "succeeded" as const,
				inference_ms: i + 1,
				completed_at: recent,
			})),
			...Array.from({ length: 10 }, (_, i) => ({
				key: `${prefix}old${i}`,
				created_at: old,
				status: "failed" as const,
				inference_ms: 1000,
				completed_at: old,
			})),
			{ key: `${prefix}waiting`, created_at: now },
		]);

		// A key scoped to the prefix sees exactly these rows.
		const key = await createKey(prefix);
		const res = await call("GET", "/v1/stats", { token: key.token });
		expect(res.status).toBe(200);
		const stats = await parsed(res, Stats);
		expect(stats.counts).toEqual({ queued: 1, processing: 0, succeeded: 100, failed: 10, cancelled: 0, total: 111 });
		const [m5, h1, d1] = stats.windows;
		expect(m5).toMatchObject({ window: "5m", completed: 100, succeeded: 100, failed: 0, throughput_per_minute: 20 });
		expect(m5?.inference_ms).toEqual({ p50: 50, p95: 95, p99: 99 });
		expect(h1).toMatchObject({ window: "1h", completed: 100, inference_ms: { p50: 50, p95: 95, p99: 99 } });
		expect(d1).toMatchObject({ window: "24h", completed: 110, succeeded: 100, failed: 10 });
		expect(d1?.inference_ms).toEqual({ p50: 55, p95: 1000, p99: 1000 });
	});

	it("the admin sees service-wide counts and the counters table", async () => {
		const res = await call("GET", "/v1/stats");
		const stats = await parsed(res, Stats);
		expect(stats.prefix).toBeNull();
		expect(stats.counts.total).toBeGreaterThan(0);
		expect(typeof stats.counters).toBe("object");
	});
});
