/**
 * A batch's pace, as its Batch JSON shows it: `rate_per_minute`, the jobs that succeeded or failed
 * in the last minute (or since the batch was created, if it is younger), scaled to a minute; and
 * `eta_seconds`, what is left divided by that rate, but never less than the model's rate limit
 * allows (a batch cannot finish faster than the limit lets its jobs be captioned). Both are null
 * until known: no job has finished yet, nothing finished in the last minute, or a prefix is still
 * being listed (its size is not known). Once a batch has ended: no rate, 0 s left.
 */
import { z } from "zod";
import { parseRows } from "../d1-rows";
import { type RateLimits, rateLimitFor } from "../models/rate-limits";
import { type EstimateModel, estimateModel } from "./estimate";
import type { BatchRow } from "./schema";

/** The window `rate_per_minute` is measured over. */
export const RATE_WINDOW_MS = 60_000;
/** A batch younger than this is measured over this much, so its first job does not read as a huge rate. */
const MIN_WINDOW_MS = 1_000;

export interface BatchPace {
	rate_per_minute: number | null;
	eta_seconds: number | null;
}

/** What a batch's Batch JSON says when its pace was not measured: nothing, or 0 s left once it ended. */
export const unmeasuredPace = (row: BatchRow): BatchPace => ({
	rate_per_minute: null,
	eta_seconds: row.completed_at === null ? null : 0,
});

/**
 * The most jobs a minute the service can caption in `language`: the rate limit of the chain's first
 * model that writes it (the one each job tries first), per MODEL_RATE_LIMITS; null when it has none.
 */
export function ceilingPerMinute(
	chain: readonly EstimateModel[],
	limits: RateLimits,
	language: string | null = null,
): number | null {
	const first = estimateModel(chain, language);
	return first === undefined ? null : (rateLimitFor(first, limits)?.perMinute ?? null);
}

/** Objects of the batch not yet a result, or null while a prefix is still being listed. */
function remaining(row: BatchRow): number | null {
	// A planned batch (a dry run) has made no job: nothing is under way, so no time is left to tell.
	if (row.status === "planned") return null;
	if (row.status === "listing") {
		if (row.key_count === null) return null;
		const done = row.succeeded + row.failed + row.cancelled + row.skipped + row.missing;
		return Math.max(0, row.key_count - done);
	}
	return row.queued + row.processing;
}

/** The pace of a batch of which `finishedInWindow` jobs succeeded or failed since `now - RATE_WINDOW_MS`. */
export function paceOf(row: BatchRow, finishedInWindow: number, ceiling: number | null, now: number): BatchPace {
	if (row.completed_at !== null) return unmeasuredPace(row);
	const window = Math.min(RATE_WINDOW_MS, Math.max(MIN_WINDOW_MS, now - row.created_at));
	const rate = row.succeeded + row.failed === 0 ? null : Math.round((finishedInWindow * 600_000) / window) / 10;
	const left = remaining(row);
	if (left === 0) return { rate_per_minute: rate, eta_seconds: 0 };
	if (left === null || rate === null || rate === 0) return { rate_per_minute: rate, eta_seconds: null };
	const atRate = (left * 60) / rate;
	const atLimit = ceiling === null ? 0 : (left * 60) / ceiling;
	return { rate_per_minute: rate, eta_seconds: Math.ceil(Math.max(atRate, atLimit)) };
}

const Finished = z.object({ batch_id: z.string(), n: z.number().int() });

/**
 * The pace of each batch, in one D1 round trip: for the batches not ended, a count of each one's
 * results in the last minute, over the last minute of `jobs_completed` (every finished job of the
 * service: at most a minute's worth of model calls, read once for all the batches shown; a batch
 * has no index of its own results by time: migrations/0030_fewer_rows.sql).
 */
export async function batchPaces(
	db: D1Database,
	rows: readonly BatchRow[],
	ceiling: (row: BatchRow) => number | null,
	now = Date.now(),
): Promise<BatchPace[]> {
	const since = now - RATE_WINDOW_MS;
	// An ended batch says so the same way everywhere (its final webhook's body is rebuilt on every attempt).
	const measured = rows.filter((row) => row.completed_at === null);
	const results =
		measured.length === 0
			? []
			: await db
					.prepare(
						`SELECT batch_id, count(*) AS n FROM jobs INDEXED BY jobs_completed
						WHERE completed_at > ?1 AND batch_id IN (SELECT value FROM json_each(?2))
							AND status IN ('succeeded', 'failed')
						GROUP BY batch_id`,
					)
					.bind(since, JSON.stringify(measured.map((row) => row.id)))
					.all()
					.then(parseRows(Finished));
	const counts = new Map(results.map((r) => [r.batch_id, r.n]));
	return rows.map((row) => paceOf(row, counts.get(row.id) ?? 0, ceiling(row), now));
}
