/**
 * The `caption-jobs-dlq` consumer: a message that exhausted its deliveries fails its job with
 * `dead_lettered`, so no upload is left without a terminal state. A dead letter is not always the
 * job's only message, though: a duplicate that kept finding the job leased by another consumer
 * ("busy", retried after the lease) may exhaust its retries while that consumer is still
 * captioning. Such a job is left to its lease holder (and, if the holder dies, to the lease
 * sweeper): only a job nobody holds (queued, or processing with an expired lease) is failed here.
 */
import { newJobId } from "../../shared/ids";
import type { JobRow } from "../../shared/jobs/schema";
import {
	failUnfinishedStatement,
	getNotificationJobRow,
	insertFailedNotificationStatement,
} from "../../shared/jobs/store";
import { log } from "../../shared/log";
import { type ObjectVersion, readCaptionMessage } from "../../shared/queue/caption-jobs";
import { ACK, type Outcome } from "../../shared/queue/runner";
import type { ConsumerSettings } from "./config";
import { finishJob } from "./finish";

const REASON = "The caption message exhausted its deliveries and was dead-lettered.";

export async function handleDeadLetter(
	message: Message<unknown>,
	env: ConsumerEnv,
	settings: ConsumerSettings,
): Promise<Outcome> {
	const target = readCaptionMessage(message.body, settings.BUCKET_NAME);
	const now = Date.now();
	switch (target.kind) {
		case "invalid":
			log("warn", "invalid_dead_letter", { message_id: message.id, reason: target.reason });
			return ACK;
		case "deleted":
		case "foreign":
			return ACK;
		case "job":
			return deadLettered(await failJob(env, target.jobId, now), target.jobId);
		case "object-version":
			return deadLettered(await failObjectVersion(env, target.version, now), target.version.key);
	}
}

/** Fails the job if nobody holds it and it is not terminal yet; null when it was left alone. */
function failJob(env: ConsumerEnv, id: string, now: number): Promise<JobRow | null> {
	return finishJob(env, failUnfinishedStatement(env.DB, id, now, "dead_lettered", REASON, "unheld"), id, now);
}

/** Fails the object version's job, or records it failed if no consumer ever made it. */
async function failObjectVersion(env: ConsumerEnv, version: ObjectVersion, now: number): Promise<JobRow | null> {
	const existing = await getNotificationJobRow(env.DB, version);
	if (existing) return failJob(env, existing.id, now);
	const id = newJobId(now);
	return finishJob(env, insertFailedNotificationStatement(env.DB, id, version, now, "dead_lettered", REASON), id, now);
}

function deadLettered(job: JobRow | null, target: string): Outcome {
	if (job) log("warn", "job_dead_lettered", { job_id: job.id, key: job.key });
	else log("info", "dead_letter_left_alone", { target, reason: "the job is finished or leased by a live consumer" });
	return ACK;
}
