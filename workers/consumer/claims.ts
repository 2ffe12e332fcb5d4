/**
 * Claims the jobs of a queue batch's messages that are ready together (workers/consumer/caption-job.ts)
 * in one D1 batch (a transaction): every claim, and the statistics counters of them all
 * (shared/jobs/batched-counts.ts). A claim that finds its job running or finished reads that job
 * afterwards, on its own (duplicates are rare). If the transaction fails, nothing of it was
 * written, and each claim is made alone, so one claim that cannot be written fails alone.
 *
 * Every claim of a group is made at the time the group is written (`now`), not when its message
 * asked: a job's `started_at`, `queue_ms` and lease run from its claim, and a message that waited
 * for its neighbours' object reads before the group was written holds its whole lease.
 */
import { type CountedClaim, claimCountsStatements } from "../../shared/jobs/batched-counts";
import {
	type ClaimResult,
	type ClaimWrite,
	claimByIdWrite,
	claimNotificationWrite,
	claimResult,
	type Lease,
} from "../../shared/jobs/store";
import { errorMessage, log } from "../../shared/log";
import type { ObjectVersion } from "../../shared/queue/caption-jobs";

export type ClaimAsk =
	| { kind: "id"; id: string; lease: Lease }
	| { kind: "version"; version: ObjectVersion; eventTime: number; lease: Lease; optionsKey: string };

/** A claim made (its result), or the error that kept it from being made. */
export type ClaimAnswer = { kind: "made"; result: ClaimResult } | { kind: "error"; error: unknown };

/** The ask's lease, as long as it asked for, starting at `now`. */
function claimedAt(ask: ClaimAsk, now: number): ClaimAsk {
	const { lease } = ask;
	return { ...ask, lease: { token: lease.token, now, expiresAt: now + (lease.expiresAt - lease.now) } };
}

/** The claim's statements; `counted`: in the group's transaction, whose statements count it (its row marked). */
function claimWrite(db: D1Database, ask: ClaimAsk, counted: boolean): ClaimWrite {
	return ask.kind === "id"
		? claimByIdWrite(db, ask.id, ask.lease, counted)
		: claimNotificationWrite(db, ask.version, ask.eventTime, ask.lease, ask.optionsKey, counted);
}

const counted = (ask: ClaimAsk): CountedClaim =>
	ask.kind === "id"
		? { kind: "id", id: ask.id }
		: {
				kind: "version",
				bucket: ask.version.bucket,
				key: ask.version.key,
				etag: ask.version.etag,
				optionsKey: ask.optionsKey,
			};

const answered = (promise: Promise<ClaimResult>): Promise<ClaimAnswer> =>
	promise.then(
		(result): ClaimAnswer => ({ kind: "made", result }),
		(error: unknown): ClaimAnswer => ({ kind: "error", error }),
	);

export async function claimJobs(db: D1Database, asked: readonly ClaimAsk[], now: number): Promise<ClaimAnswer[]> {
	const asks = asked.map((ask) => claimedAt(ask, now));
	const writes = asks.map((ask) => claimWrite(db, ask, true));
	const counts = claimCountsStatements(db, asks.map(counted));
	let results: D1Result[];
	try {
		results = await db.batch([...counts, ...writes.flatMap((w) => w.statements)]);
	} catch (err) {
		log("warn", "claim_batch_failed", { claims: asks.length, error: errorMessage(err) });
		return Promise.all(
			asks.map((ask) => {
				const write = claimWrite(db, ask, false);
				return answered(db.batch(write.statements).then((own) => claimResult(db, write, own)));
			}),
		);
	}
	let offset = counts.length;
	return Promise.all(
		writes.map((write) => {
			const own = results.slice(offset, offset + write.statements.length);
			offset += write.statements.length;
			return answered(claimResult(db, write, own));
		}),
	);
}
