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
import { CaptionMessage, isCreateAction } from "../../shared/queue/caption-jobs";
import { ACK, type Outcome } from "../../shared/queue/runner";
import { finishJob } from "./finish";

const REASON = "The caption message exhausted its deliveries and was dead-lettered.";

export async function handleDeadLetter(message: Message<unknown>, env: ConsumerEnv): Promise<Outcome> {
	const parsed = CaptionMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_dead_letter", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return ACK;
	}
	const body = parsed.data;
	const now = Date.now();
	const fail = (id: string) =>
		finishJob(env, failUnfinishedStatement(env.DB, id, now, "dead_lettered", REASON), id, now);
	let failed: JobRow | null = null;
	if ("kind" in body) {
		failed = await fail(body.job_id);
	} else if (isCreateAction(body) && body.object.eTag) {
		const version = {
			bucket: body.bucket,
			key: body.object.key,
			etag: body.object.eTag,
			size: body.object.size ?? null,
		};
		const existing = await getNotificationJobRow(env.DB, version);
		const id = existing?.id ?? newJobId(now);
		failed = existing
			? await fail(id)
			: await finishJob(
					env,
					insertFailedNotificationStatement(env.DB, id, version, now, "dead_lettered", REASON),
					id,
					now,
				);
	}
	if (failed) {
		log("warn", "job_dead_lettered", { job_id: failed.id, key: failed.key });
	}
	return ACK;
}
