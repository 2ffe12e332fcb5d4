/**
 * The `caption-jobs-dlq` consumer: a message that exhausted its deliveries fails its job with
 * `dead_lettered`, so no upload is left without a terminal state. A dead letter is not always the
 * job's only message, though: a duplicate that kept finding the job leased by another consumer
 * ("busy", retried after the lease) may exhaust its retries while that consumer is still
 * captioning. Such a job is left to its lease holder (and, if the holder dies, to the lease
 * sweeper): only a job nobody holds (queued, or processing with an expired lease) is failed here.
 *
 * This is the last queue: a dead letter it drops is gone. A job's dead letter leaves the job's row,
 * which the stalled-job sweep finds, so D1 refusing it is retried soon, like any unexpected error
 * (the runner). A notification's may be all there is of its upload: in production an object written
 * straight into the bucket has no row until a consumer makes one. D1 refusing that one retries it
 * after a minute, doubling up to 12 h (deadLetterOutageDelay), for as long as caption-jobs-dlq's
 * max_retries lasts: about 65 hours of D1 outage end with the failed job recorded.
 */
import { newJobId } from "../../shared/ids";
import type { JobRow } from "../../shared/jobs/schema";
import {
	failUnfinishedStatement,
	getNotificationJobRow,
	insertFailedNotificationStatement,
} from "../../shared/jobs/store";
import { errorMessage, log } from "../../shared/log";
import { type ObjectVersion, readCaptionMessage } from "../../shared/queue/caption-jobs";
import { deadLetterOutageDelay } from "../../shared/queue/delays";
import { ACK, type Outcome, retryAfter } from "../../shared/queue/runner";
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
			try {
				return deadLettered(await failObjectVersion(env, target.version, now), target.version.key);
			} catch (err) {
				const delaySeconds = deadLetterOutageDelay(message.attempts);
				log("error", "dead_letter_refused", {
					message_id: message.id,
					key: target.version.key,
					attempts: message.attempts,
					retry_in_seconds: delaySeconds,
					error: errorMessage(err),
				});
				return retryAfter(delaySeconds);
			}
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
