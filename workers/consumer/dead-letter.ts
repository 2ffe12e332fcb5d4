/**
 * The `caption-jobs-dlq` consumer: a message that exhausted its deliveries fails its job with
 * `dead_lettered`, so no upload is left without a terminal state.
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
import { finishJob } from "./finish";

const REASON = "The caption message exhausted its deliveries and was dead-lettered.";

export async function handleDeadLetter(message: Message<unknown>, env: ConsumerEnv): Promise<Outcome> {
	const target = readCaptionMessage(message.body);
	const now = Date.now();
	switch (target.kind) {
		case "invalid":
			log("warn", "invalid_dead_letter", { message_id: message.id, reason: target.reason });
			return ACK;
		case "ignored":
			return ACK;
		case "job":
			return deadLettered(await failJob(env, target.jobId, now));
		case "object-version":
			return deadLettered(await failObjectVersion(env, target.version, now));
	}
}

/** Fails the job if it is not terminal yet; null when it had finished. */
function failJob(env: ConsumerEnv, id: string, now: number): Promise<JobRow | null> {
	return finishJob(env, failUnfinishedStatement(env.DB, id, now, "dead_lettered", REASON), id, now);
}

/** Fails the object version's job, or records it failed if no consumer ever made it. */
async function failObjectVersion(env: ConsumerEnv, version: ObjectVersion, now: number): Promise<JobRow | null> {
	const existing = await getNotificationJobRow(env.DB, version);
	if (existing) return failJob(env, existing.id, now);
	const id = newJobId(now);
	return finishJob(env, insertFailedNotificationStatement(env.DB, id, version, now, "dead_lettered", REASON), id, now);
}

function deadLettered(job: JobRow | null): Outcome {
	if (job) log("warn", "job_dead_lettered", { job_id: job.id, key: job.key });
	return ACK;
}
