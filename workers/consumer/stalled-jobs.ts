/**
 * The stalled jobs the sweeper (sweeper.ts) re-queues or fails, in D1. One predicate decides what
 * "stalled" means, and every statement that acts on a job re-checks it in its own WHERE: a job a
 * consumer claimed, released or finished between the sweep's SELECT and its UPDATE is no longer
 * stalled, and is neither re-queued nor failed.
 */
import { z } from "zod";
import { batchRows, parseRows } from "../../shared/d1-rows";
import type { JobErrorCode } from "../../shared/jobs/schema";
import { JobRow } from "../../shared/jobs/schema";
import { failUnfinishedStatement } from "../../shared/jobs/store";

/** What counts as stalled at `now` (Unix ms). */
export interface StallCutoffs {
	now: number;
	/** A queued job untouched since before this has lost its message. */
	queuedBefore: number;
	/**
	 * A processing job claimed before this is abandoned even if its lease has not expired: its
	 * consumer is known to be gone (a restarted local stack). 0 in production: the lease decides.
	 */
	claimedBefore: number;
}

/** The predicate, on the parameters `?{now}`, `?{queued}`, `?{claimed}` of the statement it goes into. */
// The first term is jobs_unfinished's own condition (no completion time: queued and processing
// jobs, and no others), written out: SQLite then walks that partial index (the unfinished jobs
// only) instead of every job in id order. No index of its own: one over the leases cost a row
// written at every upload and every claim (migrations/0030_fewer_rows.sql), and one keyed by the
// status a row at every claim (0031_claims_unindexed.sql).
// A queued job given back with a delayed retry has its message's return time in lease_expires_at
// (shared/jobs/store.ts releaseJob): it is stalled only once that is past the cut-off too.
const stalled = (now: number, queued: number, claimed: number) =>
	`completed_at IS NULL AND status IN ('queued', 'processing')
	AND ((status = 'processing' AND (lease_expires_at < ?${now} OR updated_at < ?${claimed}))
	OR (status = 'queued' AND (updated_at < ?${claimed} OR coalesce(lease_expires_at, updated_at) < ?${queued})))`;

const StalledJob = JobRow.pick({ id: true, attempts: true, status: true });
export type StalledJob = z.infer<typeof StalledJob>;

/** One page of stalled jobs, in id order after `afterId`. */
export async function findStalledJobs(
	db: D1Database,
	cutoffs: StallCutoffs,
	afterId: string,
	limit: number,
): Promise<StalledJob[]> {
	return db
		.prepare(
			`SELECT id, attempts, status FROM jobs INDEXED BY jobs_unfinished
			WHERE ${stalled(1, 2, 3)} AND id > ?4 ORDER BY id LIMIT ?5`,
		)
		.bind(cutoffs.now, cutoffs.queuedBefore, cutoffs.claimedBefore, afterId, limit)
		.all()
		.then(parseRows(StalledJob));
}

const Requeued = z.object({ id: z.string(), batch_id: z.string().nullable(), spillover: z.number() });
export type RequeuedJob = z.infer<typeof Requeued>;

/**
 * Re-queues those of `ids` that are still stalled (lease cleared, touched so that the next sweep
 * leaves them to the message about to be sent); returns the jobs it re-queued, with their batch
 * and whether it spills over (their messages go back to their lane's queue).
 */
export async function requeueStalledJobs(db: D1Database, ids: string[], cutoffs: StallCutoffs): Promise<RequeuedJob[]> {
	if (ids.length === 0) return [];
	const [, requeued] = await db.batch([
		db
			.prepare(
				`UPDATE jobs SET updated_at = ?1, status = 'queued', lease_token = NULL, lease_expires_at = NULL
				WHERE id IN (SELECT value FROM json_each(?4)) AND ${stalled(1, 2, 3)}`,
			)
			.bind(cutoffs.now, cutoffs.queuedBefore, cutoffs.claimedBefore, JSON.stringify(ids)),
		// The rows the UPDATE just touched: re-queued now, at this sweep's time.
		db
			.prepare(
				`SELECT j.id, j.batch_id, coalesce(b.spillover, 0) AS spillover
				FROM jobs j LEFT JOIN batches b ON b.id = j.batch_id
				WHERE j.id IN (SELECT value FROM json_each(?2)) AND j.status = 'queued' AND j.updated_at = ?1`,
			)
			.bind(cutoffs.now, JSON.stringify(ids)),
	]);
	return batchRows(requeued, Requeued);
}

/** Fails job `id` if it is still stalled (RETURNING * gives the row, or none), for finishJob. */
export function failStalledJobStatement(
	db: D1Database,
	id: string,
	cutoffs: StallCutoffs,
	code: JobErrorCode,
	message: string,
): D1PreparedStatement {
	const stillStalled = { sql: stalled(4, 5, 6), params: [cutoffs.queuedBefore, cutoffs.claimedBefore] };
	return failUnfinishedStatement(db, id, cutoffs.now, code, message, stillStalled);
}

const PendingWriteBack = JobRow.pick({ id: true, batch_id: true });
export type PendingWriteBack = z.infer<typeof PendingWriteBack>;

/**
 * One page of succeeded jobs whose write-back is still pending, finished before `finishedBefore`
 * and held by no delivery (no write-back lease, or an expired one), in id order after `afterId`:
 * the delivery that finished the job died before it wrote. Sent again by id, a job's message
 * finds it finished and only does the write-back (write-back.ts).
 */
export async function findPendingWriteBacks(
	db: D1Database,
	finishedBefore: number,
	now: number,
	afterId: string,
	limit: number,
): Promise<PendingWriteBack[]> {
	return db
		.prepare(
			`SELECT id, batch_id FROM jobs INDEXED BY jobs_write_back_pending
			WHERE write_back_status = 'pending' AND status = 'succeeded' AND completed_at < ?1
				AND (write_back_lease IS NULL OR write_back_lease < ?2) AND id > ?3
			ORDER BY id LIMIT ?4`,
		)
		.bind(finishedBefore, now, afterId, limit)
		.all()
		.then(parseRows(PendingWriteBack));
}
