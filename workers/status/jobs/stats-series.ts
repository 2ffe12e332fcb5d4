/**
 * Statistics over time for `GET /v1/stats/series` (the dashboard's charts): the recent past cut
 * into equal buckets, each with the jobs that finished in it (from the completion counters, so no
 * job is counted here) and their inference-time percentiles (nearest rank over a capped sample of
 * the latest completions, read from D1 and ranked in the Worker). Every bucket is present, empty ones with zeros and
 * null percentiles. Optionally restricted to an object-key prefix (scoped API keys).
 */
import { z } from "zod";
import { batchRows } from "../../../shared/d1-rows";
import {
	COARSE_BUCKET_SECONDS,
	CompletionRow,
	completionsStatement,
	FINE_BUCKET_SECONDS,
	percentiles,
	type RowsMeter,
	readSample,
	readScoped,
	sampleStatement,
	scopeOf,
} from "./stat-counters";
import { StatsWindow } from "./stats";

/** The windows a series covers, the bucket each is cut into, and the counters' buckets it sums. */
export const SERIES_WINDOWS = {
	"15m": { seconds: 15 * 60, bucketSeconds: 30, counterSeconds: FINE_BUCKET_SECONDS },
	"1h": { seconds: 60 * 60, bucketSeconds: 60, counterSeconds: FINE_BUCKET_SECONDS },
	"24h": { seconds: 24 * 60 * 60, bucketSeconds: 15 * 60, counterSeconds: COARSE_BUCKET_SECONDS },
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
		points: z.array(StatsPoint).meta({
			description:
				"Oldest first; the last bucket is the current one. Percentiles are over the series' 2,000 most recent completions: older buckets of a busy window report null.",
		}),
	})
	.meta({ id: "StatsSeries" });
export type StatsSeries = z.infer<typeof StatsSeries>;

export async function readStatsSeries(
	db: D1Database,
	window: SeriesWindow,
	prefix: string | null,
	now = Date.now(),
	meter?: RowsMeter,
): Promise<StatsSeries> {
	const { seconds, bucketSeconds, counterSeconds } = SERIES_WINDOWS[window];
	const bucketMs = bucketSeconds * 1000;
	const count = seconds / bucketSeconds;
	// Buckets aligned on their size, the last one holding `now`.
	const since = (Math.floor(now / bucketMs) - count + 1) * bucketMs;
	const { results } = await readScoped(
		db,
		prefix,
		[completionsStatement(db, scopeOf(prefix), counterSeconds, since, bucketMs), sampleStatement(db, prefix, since)],
		now,
		meter,
	);
	const completions = new Map(batchRows(results[0], CompletionRow).map((row) => [row.b, row]));
	const times = new Map<number, number[]>();
	for (const row of readSample(results[1])) {
		const b = Math.floor((row.completed_at - since) / bucketMs);
		const bucket = times.get(b) ?? [];
		bucket.push(row.inference_ms);
		times.set(b, bucket);
	}
	const points = Array.from({ length: count }, (_, b): StatsPoint => {
		const row = completions.get(b);
		return {
			start: new Date(since + b * bucketMs).toISOString(),
			completed: row?.completed ?? 0,
			succeeded: row?.succeeded ?? 0,
			failed: row?.failed ?? 0,
			inference_ms: percentiles(times.get(b) ?? []),
		};
	});
	return { prefix, window, bucket_seconds: bucketSeconds, generated_at: new Date(now).toISOString(), points };
}
