/**
 * Statistics over time for `GET /v1/stats/series` (the dashboard's charts): the recent past cut
 * into equal buckets, each with the jobs that finished in it and their inference-time
 * percentiles (nearest rank, computed in D1 per bucket with a window function, so no job row
 * leaves the database). Every bucket is present, empty ones with zeros and null percentiles.
 * Optionally restricted to an object-key prefix (scoped API keys).
 */
import { z } from "zod";
import { prefixCondition } from "./key-range";
import { StatsWindow, WindowRow } from "./stats";

/** The windows a series covers, and the bucket each is cut into. */
export const SERIES_WINDOWS = {
	"15m": { seconds: 15 * 60, bucketSeconds: 30 },
	"1h": { seconds: 60 * 60, bucketSeconds: 60 },
	"24h": { seconds: 24 * 60 * 60, bucketSeconds: 15 * 60 },
} as const;
export type SeriesWindow = keyof typeof SERIES_WINDOWS;
export const SeriesWindow = z.enum(Object.keys(SERIES_WINDOWS) as [SeriesWindow, ...SeriesWindow[]]);

/** A bucket: the figures of a `StatsWindow`, over the bucket instead of the whole window. */
export const StatsPoint = StatsWindow.pick({ succeeded: true, failed: true, inference_ms: true })
	.extend({
		start: z.iso.datetime().meta({ description: "Start of the bucket; it lasts `bucket_seconds`." }),
		completed: z.number().int().meta({ description: "Jobs that reached a terminal state in the bucket." }),
	})
	.meta({ id: "StatsPoint" });
export type StatsPoint = z.infer<typeof StatsPoint>;

export const StatsSeries = z
	.object({
		prefix: z.string().nullable().meta({ description: "Object-key prefix the figures are limited to." }),
		window: SeriesWindow,
		bucket_seconds: z.number().int(),
		generated_at: z.iso.datetime(),
		points: z.array(StatsPoint).meta({ description: "Oldest first; the last bucket is the current one." }),
	})
	.meta({ id: "StatsSeries" });
export type StatsSeries = z.infer<typeof StatsSeries>;

/** A bucket's row: a window's row, with the bucket's index. */
const BucketRow = WindowRow.extend({ b: z.number().int() });

export async function readStatsSeries(
	db: D1Database,
	window: SeriesWindow,
	prefix: string | null,
	now = Date.now(),
): Promise<StatsSeries> {
	const { seconds, bucketSeconds } = SERIES_WINDOWS[window];
	const bucketMs = bucketSeconds * 1000;
	const count = seconds / bucketSeconds;
	// Buckets aligned on their size, the last one holding `now`.
	const since = (Math.floor(now / bucketMs) - count + 1) * bucketMs;
	const range = prefix === null ? { sql: "1", params: [] } : prefixCondition("key", prefix);
	const { results } = await db
		.prepare(
			`WITH done AS (SELECT CAST((completed_at - ?1) / ?2 AS INTEGER) AS b, status, inference_ms FROM jobs
				WHERE completed_at >= ?1 AND ${range.sql}),
			ranked AS (SELECT b, inference_ms, ROW_NUMBER() OVER (PARTITION BY b ORDER BY inference_ms) AS rn,
				COUNT(*) OVER (PARTITION BY b) AS n FROM done WHERE inference_ms IS NOT NULL),
			pct AS (SELECT b, MIN(CASE WHEN rn * 100 >= n * 50 THEN inference_ms END) AS p50,
				MIN(CASE WHEN rn * 100 >= n * 95 THEN inference_ms END) AS p95,
				MIN(CASE WHEN rn * 100 >= n * 99 THEN inference_ms END) AS p99 FROM ranked GROUP BY b)
			SELECT done.b AS b, COUNT(*) AS completed, SUM(status = 'succeeded') AS succeeded,
				SUM(status = 'failed') AS failed, pct.p50 AS p50, pct.p95 AS p95, pct.p99 AS p99
			FROM done LEFT JOIN pct ON pct.b = done.b GROUP BY done.b`,
		)
		.bind(since, bucketMs, ...range.params)
		.all();
	const byBucket = new Map(
		z
			.array(BucketRow)
			.parse(results)
			.map((row) => [row.b, row]),
	);
	const points = Array.from({ length: count }, (_, b): StatsPoint => {
		const row = byBucket.get(b);
		return {
			start: new Date(since + b * bucketMs).toISOString(),
			completed: row?.completed ?? 0,
			succeeded: row?.succeeded ?? 0,
			failed: row?.failed ?? 0,
			inference_ms: { p50: row?.p50 ?? null, p95: row?.p95 ?? null, p99: row?.p99 ?? null },
		};
	});
	return { prefix, window, bucket_seconds: bucketSeconds, generated_at: new Date(now).toISOString(), points };
}
