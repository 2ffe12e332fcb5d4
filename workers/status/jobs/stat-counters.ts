/**
 * Reading the statistics counters (migrations/0008_bounded_stats.sql) for `GET /v1/stats` and
 * `/v1/stats/series`: jobs by status per scope, and terminal jobs per scope and time bucket, both
 * kept by triggers on `jobs` in the statement that changes a job. A request reads a bounded number
 * of rows whatever the size of `jobs`: 5 count rows, at most 2 × 2,880 + 96 bucket rows, and for
 * the inference-time percentiles the most recent PERCENTILE_SAMPLE_ROWS completions (an index
 * range with a cap: exact while a window holds fewer completions, a sample of its latest beyond).
 */
import { z } from "zod";
import { batchRows } from "../../../shared/d1-rows";
import { JobStatus } from "../../../shared/jobs/schema";

/** How many rows a stats read examined (D1's `meta.rows_read`, summed over its statements). */
export interface RowsMeter {
	rowsRead: number;
}

export function meterResults(meter: RowsMeter | undefined, results: readonly D1Result[]): void {
	if (!meter) return;
	for (const result of results) meter.rowsRead += result.meta.rows_read ?? 0;
}

/** Completions at most examined for the percentiles of one stats or series request. */
export const PERCENTILE_SAMPLE_ROWS = 2000;

/** Bucket widths the counters are kept in (the CHECK of job_completions). */
export const FINE_BUCKET_SECONDS = 30;
export const COARSE_BUCKET_SECONDS = 900;

/** The counters' scope of a caller: '' for the whole service, else its key prefix. */
export const scopeOf = (prefix: string | null) => prefix ?? "";

const CountRow = z.object({ status: JobStatus, n: z.number().int() });
export type JobCounts = Record<JobStatus, number>;

function countsStatement(db: D1Database, scope: string): D1PreparedStatement {
	return db.prepare("SELECT status, n FROM job_counts WHERE scope = ?1").bind(scope);
}

/** The counts by status; null when the scope has no counters yet (see ensureScope). */
function readCounts(result: D1Result | undefined): JobCounts | null {
	const rows = batchRows(result, CountRow);
	if (rows.length === 0) return null;
	const counts: JobCounts = { queued: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0 };
	for (const row of rows) counts[row.status] = row.n;
	return counts;
}

/**
 * Runs `statements` in one batch after the scope's counts by status. A prefix that has no
 * counters yet (they are normally added when its API key is created) is added first, once: the
 * insert's trigger counts the prefix's jobs through the key index; then the batch runs again.
 */
export async function readScoped(
	db: D1Database,
	prefix: string | null,
	statements: D1PreparedStatement[],
	now: number,
	meter?: RowsMeter,
): Promise<{ counts: JobCounts; results: D1Result[] }> {
	const scope = scopeOf(prefix);
	const read = async () => {
		const [counts, ...results] = await db.batch([countsStatement(db, scope), ...statements]);
		meterResults(meter, [...(counts ? [counts] : []), ...results]);
		return { counts: readCounts(counts), results };
	};
	const first = await read();
	if (first.counts !== null) return { counts: first.counts, results: first.results };
	const added = await db
		.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES (?1, ?2) ON CONFLICT (prefix) DO NOTHING")
		.bind(scope, now)
		.run();
	meterResults(meter, [added]);
	const again = await read();
	return {
		counts: again.counts ?? { queued: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0 },
		results: again.results,
	};
}

/** Buckets of `bucketSeconds` from `since` (inclusive), summed per `groupMs`-wide group from `since`. */
export function completionsStatement(
	db: D1Database,
	scope: string,
	bucketSeconds: number,
	since: number,
	groupMs: number,
): D1PreparedStatement {
	return db
		.prepare(
			`SELECT CAST((start - ?3) / ?4 AS INTEGER) AS b, sum(completed) AS completed, sum(succeeded) AS succeeded,
				sum(failed) AS failed
			FROM job_completions WHERE scope = ?1 AND bucket_seconds = ?2 AND start >= ?3 GROUP BY b`,
		)
		.bind(scope, bucketSeconds, since, groupMs);
}

export const CompletionRow = z.object({
	b: z.number().int(),
	completed: z.number().int(),
	succeeded: z.number().int(),
	failed: z.number().int(),
});
export type CompletionRow = z.infer<typeof CompletionRow>;

const SampleRow = z.object({ completed_at: z.number().int(), inference_ms: z.number().int() });
export type SampleRow = z.infer<typeof SampleRow>;

/**
 * The inference times of the most recent PERCENTILE_SAMPLE_ROWS completions since `since` (the
 * jobs_completed index, newest first, capped before the prefix filter so that a rare prefix
 * cannot make the scan long). The percentiles are computed from them in the Worker: ranking in
 * SQL reads each sampled row several times more (D1 counts the sorts' rows too).
 */
export function sampleStatement(db: D1Database, prefix: string | null, since: number): D1PreparedStatement {
	const inPrefix = prefix === null ? "" : "AND substr(key, 1, length(?3)) = ?3";
	return db
		.prepare(
			`SELECT completed_at, inference_ms FROM (
				SELECT completed_at, inference_ms, key FROM jobs WHERE completed_at >= ?1 ORDER BY completed_at DESC LIMIT ?2)
			WHERE inference_ms IS NOT NULL ${inPrefix}`,
		)
		.bind(since, PERCENTILE_SAMPLE_ROWS, ...(prefix === null ? [] : [prefix]));
}

export function readSample(result: D1Result | undefined): SampleRow[] {
	return batchRows(result, SampleRow);
}

export interface Percentiles {
	p50: number | null;
	p95: number | null;
	p99: number | null;
}

/** Nearest-rank p50/p95/p99: the smallest value whose rank r (1-based) has r × 100 ≥ n × p. */
export function percentiles(values: number[]): Percentiles {
	const sorted = [...values].sort((a, b) => a - b);
	const at = (p: number) => sorted[Math.ceil((sorted.length * p) / 100) - 1] ?? null;
	return { p50: at(50), p95: at(95), p99: at(99) };
}
