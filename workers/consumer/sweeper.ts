/**
 * Lease sweeper (cron): a job whose consumer died mid-caption keeps an expired lease; a queued
 * job whose message was lost sits untouched. Both are re-queued; a job that has used up its
 * attempts fails with `retries_exhausted` instead.
 */
import { failUnfinishedStatement, findStalledJobs, touchJobs } from "../../shared/jobs/store";
import { log } from "../../shared/log";
import type { CaptionRequest } from "../../shared/queue/caption-jobs";
import { sendAll } from "../../shared/queue/send";
import type { ConsumerSettings } from "./config";
import { finishJob } from "./finish";

/** A queued job untouched for this long has lost its message. */
export const QUEUED_STALL_MS = 10 * 60 * 1000;

export async function sweepStalledJobs(env: ConsumerEnv, settings: ConsumerSettings, now = Date.now()) {
	const stalled = await findStalledJobs(env.DB, now, now - QUEUED_STALL_MS);
	const requeue: string[] = [];
	let failed = 0;
	for (const job of stalled) {
		if (job.attempts > settings.CAPTION_MAX_RETRIES) {
			const message = `The job stalled after ${job.attempts} attempts.`;
			const statement = failUnfinishedStatement(env.DB, job.id, now, "retries_exhausted", message);
			if (await finishJob(env, statement, job.id, now)) failed++;
		} else {
			requeue.push(job.id);
		}
	}
	if (requeue.length > 0) {
		await touchJobs(env.DB, requeue, now);
		await sendAll(
			env.CAPTION_JOBS,
			requeue.map((job_id): CaptionRequest => ({ kind: "caption-job", job_id })),
		);
	}
	if (stalled.length > 0) log("warn", "stalled_jobs_swept", { requeued: requeue.length, failed });
	return { requeued: requeue.length, failed };
}
