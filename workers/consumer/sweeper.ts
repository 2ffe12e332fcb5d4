/**
 * Lease sweeper (cron, and `npm run dev` at start and periodically): a job whose consumer died
 * mid-caption keeps an expired lease; a queued job whose message was lost sits untouched. Both are
 * re-queued; a job that has used up its attempts fails with `retries_exhausted` instead. A
 * succeeded job whose write-back a dead consumer left pending is sent again by id. Each
 * action re-checks staleness in its own statement (stalled-jobs.ts), and one run goes through
 * every stalled job, page by page, within a time budget (the rest is the next run's).
 */
import { log } from "../../shared/log";
import type { CaptionRequest } from "../../shared/queue/caption-jobs";
import { sendAll } from "../../shared/queue/send";
import type { ConsumerSettings } from "./config";
import { finishJob } from "./finish";
import {
	failStalledJobStatement,
	findPendingWriteBacks,
	findStalledJobs,
	type RequeuedJob,
	requeueStalledJobs,
	type StallCutoffs,
} from "./stalled-jobs";

/** A queued job untouched for this long has lost its message. */
export const QUEUED_STALL_MS = 10 * 60 * 1000;
/** Wall time one run may spend (a cron invocation may run for minutes; this leaves room). */
export const JOB_SWEEP_BUDGET_MS = 30_000;
const PAGE_SIZE = 100;

export interface JobSweepOptions {
	/** Overrides the production cut-offs (`npm run dev`'s start-up and periodic sweeps). */
	queuedBefore?: number;
	claimedBefore?: number;
	budgetMs?: number;
}

export interface JobSweepResult {
	requeued: number;
	failed: number;
	/** Succeeded jobs whose pending write-back was sent again. */
	writeBacks: number;
	/** Whether the budget ran out before the last page (the next run goes on). */
	truncated: boolean;
}

export async function sweepStalledJobs(
	env: ConsumerEnv,
	settings: ConsumerSettings,
	now = Date.now(),
	options: JobSweepOptions = {},
): Promise<JobSweepResult> {
	const cutoffs: StallCutoffs = {
		now,
		queuedBefore: options.queuedBefore ?? now - QUEUED_STALL_MS,
		claimedBefore: options.claimedBefore ?? 0,
	};
	const deadline = Date.now() + (options.budgetMs ?? JOB_SWEEP_BUDGET_MS);
	let requeued = 0;
	let failed = 0;
	let afterId = "";
	let truncated = false;
	for (;;) {
		const page = await findStalledJobs(env.DB, cutoffs, afterId, PAGE_SIZE);
		const candidates: string[] = [];
		for (const job of page) {
			if (job.attempts > settings.CAPTION_MAX_RETRIES) {
				const message = `The job stalled after ${job.attempts} attempts.`;
				const statement = failStalledJobStatement(env.DB, job.id, cutoffs, "retries_exhausted", message);
				if (await finishJob(env, statement, job.id, now)) failed++;
			} else {
				candidates.push(job.id);
			}
		}
		const jobs = await requeueStalledJobs(env.DB, candidates, cutoffs);
		await sendToLanes(env, jobs);
		requeued += jobs.length;
		const last = page.at(-1);
		if (page.length < PAGE_SIZE || !last) break;
		afterId = last.id;
		if (Date.now() >= deadline) {
			truncated = true;
			break;
		}
	}
	const writeBacks = truncated ? 0 : await resendPendingWriteBacks(env, cutoffs, deadline);
	if (requeued + failed + writeBacks > 0) {
		log("warn", "stalled_jobs_swept", { requeued, failed, write_backs: writeBacks, truncated });
	}
	return { requeued, failed, writeBacks, truncated };
}

/**
 * Sends again, each in its lane, the succeeded jobs whose write-back has been pending since before
 * the queued cut-off with no delivery holding it. A message still on its way makes a second one
 * harmless: the write-back lease lets one delivery write.
 */
async function resendPendingWriteBacks(env: ConsumerEnv, cutoffs: StallCutoffs, deadline: number): Promise<number> {
	let sent = 0;
	let afterId = "";
	for (;;) {
		const page = await findPendingWriteBacks(env.DB, cutoffs.queuedBefore, cutoffs.now, afterId, PAGE_SIZE);
		await sendToLanes(env, page);
		sent += page.length;
		const last = page.at(-1);
		if (page.length < PAGE_SIZE || !last || Date.now() >= deadline) return sent;
		afterId = last.id;
	}
}

/**
 * Sends each job's caption message back to its own lane: a batch's jobs never jump ahead of
 * interactive work, and a spillover batch's keep their spillover.
 */
async function sendToLanes(
	env: ConsumerEnv,
	jobs: readonly (Pick<RequeuedJob, "id" | "batch_id"> & { spillover?: number })[],
): Promise<void> {
	const message = (j: (typeof jobs)[number]): CaptionRequest =>
		j.spillover === 1 ? { kind: "caption-job", job_id: j.id, spillover: true } : { kind: "caption-job", job_id: j.id };
	await sendAll(env.CAPTION_JOBS, jobs.filter((j) => j.batch_id === null).map(message));
	await sendAll(env.CAPTION_BATCH_JOBS, jobs.filter((j) => j.batch_id !== null).map(message));
}
