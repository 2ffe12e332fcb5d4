/**
 * Service statistics for `GET /v1/stats`: jobs by status, and over recent windows the number of
 * finished jobs, throughput and inference-time percentiles, the service `counters`, and the
 * progress of the batches in progress (their maintained counts). Optionally restricted to an
 * object-key prefix (scoped API keys). No job is counted here: the figures come from counters kept
 * by triggers as jobs change (./stat-counters.ts), so a request reads a bounded number of rows
 * whatever the size of the jobs table.
 */
import { z } from "zod";
import type { EstimateModel } from "../../../shared/batches/estimate";
import { Batch, BatchRow, toBatch } from "../../../shared/batches/schema";
import { batchRows } from "../../../shared/d1-rows";
import { prefixCondition } from "./key-range";
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

/** The windows, each the last `seconds / bucketSeconds` buckets of the counters, the current one included. */
export const STATS_WINDOWS: readonly { name: "5m" | "1h" | "24h"; seconds: number; bucketSeconds: number }[] = [
	{ name: "5m", seconds: 5 * 60, bucketSeconds: FINE_BUCKET_SECONDS },
	{ name: "1h", seconds: 60 * 60, bucketSeconds: FINE_BUCKET_SECONDS },
	{ name: "24h", seconds: 24 * 60 * 60, bucketSeconds: COARSE_BUCKET_SECONDS },
];

/** Where a window starts: `seconds` back from the end of the current bucket. */
export function windowStart(now: number, seconds: number, bucketSeconds: number): number {
	const bucketMs = bucketSeconds * 1000;
	return (Math.floor(now / bucketMs) + 1) * bucketMs - seconds * 1000;
}

const ms = z.number().int().nullable();

export const StatsWindow = z
	.object({
		window: z.enum(["5m", "1h", "24h"]),
		seconds: z.number().int(),
		completed: z.number().int().meta({
			description:
				"Jobs that reached a terminal state in the window (its buckets: 30 s for 5m and 1h, 15 min for 24h, the current one included).",
		}),
		succeeded: z.number().int(),
		failed: z.number().int(),
		throughput_per_minute: z.number().meta({ description: "Completed jobs per minute over the window." }),
		inference_ms: z.object({ p50: ms, p95: ms, p99: ms }).meta({
			description:
				"Nearest-rank percentiles over the window's completions that ran a model, among the 2,000 most recent completions of the last 24 h (a sample of the latest ones when there are more).",
		}),
	})
	.meta({ id: "StatsWindow" });
export type StatsWindow = z.infer<typeof StatsWindow>;

export const Stats = z
	.object({
		prefix: z.string().nullable().meta({ description: "Object-key prefix the figures are limited to." }),
		generated_at: z.iso.datetime(),
		counts: z.object({
			queued: z.number().int(),
			processing: z.number().int(),
			succeeded: z.number().int(),
			failed: z.number().int(),
			cancelled: z.number().int(),
			total: z.number().int(),
		}),
		windows: z.array(StatsWindow),
		counters: z
			.record(z.string(), z.number().int())
			.meta({ description: "Service-wide counters (e.g. invalid notifications); empty for scoped keys." }),
		batches: z.array(Batch).meta({
			description: "Batches still `listing` or `running`, newest first (at most 100), with their progress in `counts`.",
		}),
	})
	.meta({ id: "Stats" });
export type Stats = z.infer<typeof Stats>;

const CounterRow = z.object({ name: z.string(), value: z.number().int() });

/** Batches in progress examined at most (newest first, through the batches_active index) before the scope filter. */
export const ACTIVE_BATCHES_SCANNED = 1000;

/** `chain` (MODEL_CHAIN) prices a started dry run's estimate, as GET /v1/batches/{id} does. */
export async function readStats(
	db: D1Database,
	prefix: string | null,
	chain: readonly EstimateModel[],
	now = Date.now(),
	meter?: RowsMeter,
): Promise<Stats> {
	const scope = scopeOf(prefix);
	const starts = STATS_WINDOWS.map((w) => windowStart(now, w.seconds, w.bucketSeconds));
	const windows = STATS_WINDOWS.map((w, i) =>
		completionsStatement(db, scope, w.bucketSeconds, starts[i] ?? now, w.seconds * 1000),
	);
	const sample = sampleStatement(db, prefix, Math.min(...starts));
	const counters = db.prepare("SELECT name, value FROM counters ORDER BY name");
	const inScope = prefix === null ? { sql: "1", params: [] } : prefixCondition("key_prefix", prefix);
	const batches = db
		.prepare(
			`SELECT * FROM (SELECT * FROM batches WHERE status IN ('listing', 'running')
				ORDER BY created_at DESC, id DESC LIMIT ${ACTIVE_BATCHES_SCANNED})
			WHERE ${inScope.sql} ORDER BY created_at DESC, id DESC LIMIT 100`,
		)
		.bind(...inScope.params);
	const { counts: byStatus, results } = await readScoped(
		db,
		prefix,
		[counters, batches, sample, ...windows],
		now,
		meter,
	);
	const [counterRes, batchRes, sampleRes, ...windowRes] = results;
	const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
	const sampled = readSample(sampleRes);
	return {
		prefix,
		generated_at: new Date(now).toISOString(),
		counts: { ...byStatus, total },
		windows: STATS_WINDOWS.map((w, i) => {
			const [row] = batchRows(windowRes[i], CompletionRow);
			const completed = row?.completed ?? 0;
			const since = starts[i] ?? now;
			return {
				window: w.name,
				seconds: w.seconds,
				completed,
				succeeded: row?.succeeded ?? 0,
				failed: row?.failed ?? 0,
				throughput_per_minute: Math.round((completed / (w.seconds / 60)) * 1000) / 1000,
				inference_ms: percentiles(sampled.filter((r) => r.completed_at >= since).map((r) => r.inference_ms)),
			};
		}),
		// Counters are service-wide, so a key limited to a prefix does not see them.
		counters:
			prefix === null ? Object.fromEntries(batchRows(counterRes, CounterRow).map((r) => [r.name, r.value])) : {},
		batches: batchRows(batchRes, BatchRow).map((row) => toBatch(row, undefined, chain)),
	};
}
