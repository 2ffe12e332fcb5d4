/**
 * The `caption-jobs-dlq` consumer: a message that exhausted its deliveries fails its job with
 * `dead_lettered`, so no upload is left without a terminal state.
 */
import { newJobId } from "../../shared/ids";
import {
	failUnfinishedStatement,
	getNotificationJobRow,
	insertFailedNotificationStatement,
} from "../../shared/jobs/store";
import { log } from "../../shared/log";
import { CaptionMessage, isCreateAction } from "../../shared/queue/caption-jobs";
import { type FinishedJob, finishWithEvent } from "../../shared/webhooks/outbox";
import type { Outcome } from "./caption-job";
import { emitJobFinished } from "./finish";

const REASON = "The caption message exhausted its deliveries and was dead-lettered.";

export async function handleDeadLetter(message: Message<unknown>, env: ConsumerEnv): Promise<Outcome> {
	const parsed = CaptionMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_dead_letter", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return { ack: true };
	}
	const body = parsed.data;
	const now = Date.now();
	const fail = (id: string) =>
		finishWithEvent(env.DB, failUnfinishedStatement(env.DB, id, now, "dead_lettered", REASON), id, now);
	let failed: FinishedJob | null = null;
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
			: await finishWithEvent(
					env.DB,
					insertFailedNotificationStatement(env.DB, id, version, now, "dead_lettered", REASON),
					id,
					now,
				);
	}
	if (failed) {
		log("warn", "job_dead_lettered", { job_id: failed.job.id, key: failed.job.key });
		await emitJobFinished(env, failed);
	}
	return { ack: true };
}
