/**
 * Service statistics for `GET /v1/stats`: jobs by status, and over recent windows the number of
 * finished jobs, throughput and inference-time percentiles (nearest rank, computed in D1 with a
 * window function so no rows leave the database), the service `counters`, and the progress of the
 * batches in progress (their maintained counts: no job is counted). Optionally restricted to an
 * object-key prefix (scoped API keys).
 */
import { z } from "zod";
import { Batch, BatchRow, toBatch } from "../../../shared/batches/schema";
import { batchRows } from "../../../shared/d1-rows";
import { JobStatus } from "../../../shared/jobs/schema";
import { prefixCondition } from "./key-range";

export const STATS_WINDOWS: readonly { name: "5m" | "1h" | "24h"; seconds: number }[] = [
	{ name: "5m", seconds: 5 * 60 },
	{ name: "1h", seconds: 60 * 60 },
	{ name: "24h", seconds: 24 * 60 * 60 },
];

const ms = z.number().int().nullable();

export const StatsWindow = z
	.object({
		window: z.enum(["5m", "1h", "24h"]),
		seconds: z.number().int(),
		completed: z.number().int().meta({ description: "Jobs that reached a terminal state in the window." }),
		succeeded: z.number().int(),
		failed: z.number().int(),
		throughput_per_minute: z.number().meta({ description: "Completed jobs per minute over the window." }),
		inference_ms: z.object({ p50: ms, p95: ms, p99: ms }),
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

// Rows as D1 returns them, parsed rather than cast so that a schema drift fails loudly.
const CountRow = z.object({ status: JobStatus, n: z.number().int() });
const CounterRow = z.object({ name: z.string(), value: z.number().int() });
export const WindowRow = z.object({
	completed: z.number().int(),
	succeeded: z.number().int(),
	failed: z.number().int(),
	p50: ms,
	p95: ms,
	p99: ms,
});

export async function readStats(db: D1Database, prefix: string | null, now = Date.now()): Promise<Stats> {
	const range = prefix === null ? { sql: "1", params: [] } : prefixCondition("key", prefix);
	const counts = db
		.prepare(`SELECT status, COUNT(*) AS n FROM jobs WHERE ${range.sql} GROUP BY status`)
		.bind(...range.params);
	const windows = STATS_WINDOWS.map((w) =>
		db
			.prepare(
				`WITH done AS (SELECT status, inference_ms FROM jobs WHERE completed_at >= ? AND ${range.sql}),
				ranked AS (SELECT inference_ms, ROW_NUMBER() OVER (ORDER BY inference_ms) AS rn, COUNT(*) OVER () AS n
					FROM done WHERE inference_ms IS NOT NULL)
				SELECT (SELECT COUNT(*) FROM done) AS completed,
					(SELECT COUNT(*) FROM done WHERE status = 'succeeded') AS succeeded,
					(SELECT COUNT(*) FROM done WHERE status = 'failed') AS failed,
					(SELECT MIN(CASE WHEN rn * 100 >= n * 50 THEN inference_ms END) FROM ranked) AS p50,
					(SELECT MIN(CASE WHEN rn * 100 >= n * 95 THEN inference_ms END) FROM ranked) AS p95,
					(SELECT MIN(CASE WHEN rn * 100 >= n * 99 THEN inference_ms END) FROM ranked) AS p99`,
			)
			.bind(now - w.seconds * 1000, ...range.params),
	);
	const counters = db.prepare("SELECT name, value FROM counters ORDER BY name");
	const scope = prefix === null ? { sql: "1", params: [] } : prefixCondition("key_prefix", prefix);
	const batches = db
		.prepare(
			`SELECT * FROM batches WHERE status IN ('listing', 'running') AND ${scope.sql}
			ORDER BY created_at DESC, id DESC LIMIT 100`,
		)
		.bind(...scope.params);
	const [countRes, counterRes, batchRes, ...windowRes] = await db.batch([counts, counters, batches, ...windows]);

	const byStatus: Record<JobStatus, number> = { queued: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0 };
	for (const row of batchRows(countRes, CountRow)) byStatus[row.status] = row.n;
	const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
	return {
		prefix,
		generated_at: new Date(now).toISOString(),
		counts: { ...byStatus, total },
		windows: STATS_WINDOWS.map((w, i) => {
			const row = WindowRow.parse(windowRes[i]?.results[0]);
			return {
				window: w.name,
				seconds: w.seconds,
				completed: row.completed,
				succeeded: row.succeeded,
				failed: row.failed,
				throughput_per_minute: Math.round((row.completed / (w.seconds / 60)) * 1000) / 1000,
				inference_ms: { p50: row.p50, p95: row.p95, p99: row.p99 },
			};
		}),
		// Counters are service-wide, so a key limited to a prefix does not see them.
		counters:
			prefix === null ? Object.fromEntries(batchRows(counterRes, CounterRow).map((r) => [r.name, r.value])) : {},
		batches: batchRows(batchRes, BatchRow).map(toBatch),
	};
}
