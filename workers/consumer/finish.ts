/**
 * Making a job terminal, wherever the consumer does it (a caption, a dead letter, a sweep): the
 * statement that finishes the job commits with its webhook event (shared/webhooks/outbox.ts), and
 * with its batch's final event when this was the batch's last unfinished job; then the events go
 * onto `webhook-deliveries`, and the event hub hears of them at once (shared/events/notify.ts). A failed send is not an error here: the event stays undispatched and
 * the webhooks Worker's cron sends it.
 */
import { batchEventMessage } from "../../shared/batches/settle";
import type { EventHub } from "../../shared/events/hub";
import { notifyEventHub } from "../../shared/events/notify";
import { countedFinishes, finishCountsStatements } from "../../shared/jobs/batched-counts";
import type { JobRow } from "../../shared/jobs/schema";
import { type FinishOutcome, finishStatement, type JobResultFields } from "../../shared/jobs/store";
import { errorMessage, log } from "../../shared/log";
import { sendAll, sendOrLeaveToSweeper } from "../../shared/queue/send";
import type { JobEventMessage } from "../../shared/queue/webhook-deliveries";
import { type FinishedJob, finishWithEvent, finishWrite } from "../../shared/webhooks/outbox";

type FinishEnv = { DB: D1Database; WEBHOOK_DELIVERIES: Queue; EVENT_HUB: DurableObjectNamespace<EventHub> };

/**
 * Runs `finish` (an UPDATE/INSERT … RETURNING * that makes job `jobId` terminal, or changes
 * nothing) with the job's event and enqueues the event. Returns the finished row, or null when the
 * statement changed nothing: the lease was lost or the job had already finished, and nothing is
 * written or sent.
 */
export async function finishJob(
	env: FinishEnv,
	finish: D1PreparedStatement,
	jobId: string,
	now: number,
): Promise<JobRow | null> {
	const finished = await finishWithEvent(env.DB, finish, jobId, now);
	if (!finished) return null;
	// Live streams first (GET /v1/events): the webhook fan-out waits for its queue's batch.
	await notifyEventHub(env.EVENT_HUB, [finished.eventId, ...(finished.batch ? [finished.batch.eventId] : [])]);
	const event: JobEventMessage = { kind: "job-event", event_id: finished.eventId, job_id: jobId };
	await sendOrLeaveToSweeper(
		env.WEBHOOK_DELIVERIES,
		{ body: event, contentType: "json" },
		{ queue: "webhook-deliveries", event_id: finished.eventId },
	);
	if (finished.batch) {
		await sendOrLeaveToSweeper(
			env.WEBHOOK_DELIVERIES,
			{ body: batchEventMessage(finished.batch), contentType: "json" },
			{ queue: "webhook-deliveries", event_id: finished.batch.eventId },
		);
	}
	return finished.job;
}

/** A claimed job's finish, as the caption consumer asks for it. */
export interface FinishAsk {
	job: JobRow;
	outcome: FinishOutcome;
	fields: JobResultFields;
}

/** A finish written (the finished row, or null: the lease was lost), or the error that kept it from being written. */
export type FinishAnswer = { kind: "written"; job: JobRow | null } | { kind: "error"; error: unknown };

/**
 * Finishes the jobs of a queue batch that are ready together (workers/consumer/caption-job.ts): one
 * D1 batch (a transaction) holds every finish with its event and its batch's settling, and the
 * statistics counters of them all (shared/jobs/batched-counts.ts); then the event hub hears of
 * every event at once and the events go onto `webhook-deliveries` in one send. A job's event that
 * no target could take when it was written (no callback URL, no active subscription over its key) is
 * recorded dispatched, and sent only if it is a batch job's, for its batch's progress
 * (shared/webhooks/outbox.ts, EventDispatch). Answers, per ask,
 * the finished row or null (the lease was lost: nothing written for it). If the transaction
 * fails, each job is finished alone (`finishJob`), so one job whose finish cannot be written fails
 * alone: its answer is the error. A failed transaction may still have committed (D1 answered with
 * an error after the commit): a finish that then writes nothing alone answers an error too, so its
 * message is retried rather than acknowledged with work (a write-back) left undone.
 */
export async function finishJobs(env: FinishEnv, asks: readonly FinishAsk[], now: number): Promise<FinishAnswer[]> {
	const counted = asks.map(({ job, outcome, fields }) => ({
		id: job.id,
		leaseToken: job.lease_token,
		status: outcome.status,
		inputTokens: fields.usage?.inputTokens ?? null,
		outputTokens: fields.usage?.outputTokens ?? null,
		model: fields.model ?? null,
	}));
	const group = countedFinishes(counted);
	const writes = asks.map(({ job, outcome, fields }) =>
		finishWrite(
			env.DB,
			finishStatement(env.DB, job, now, outcome, fields, group),
			job.id,
			now,
			"dispatched-without-target",
		),
	);
	const counts = finishCountsStatements(env.DB, counted, now);
	let results: D1Result[];
	try {
		// Every finish and job event first, then the batches' settling: a batch that the group ends gets
		// its final event after the events of all its jobs in the group.
		results = await env.DB.batch([
			...counts,
			...writes.flatMap((w) => w.statements),
			...writes.flatMap((w) => w.settle),
		]);
	} catch (err) {
		log("warn", "finish_batch_failed", { jobs: asks.length, error: errorMessage(err) });
		return Promise.all(
			asks.map(({ job, outcome, fields }) =>
				finishJob(env, finishStatement(env.DB, job, now, outcome, fields), job.id, now).then(
					// Nothing written alone after a failed transaction is not a lost lease for sure: D1 may
					// have committed the transaction and then failed to answer. The message is retried, and
					// its next delivery finds the job finished and does what the finish left (its write-back).
					(row): FinishAnswer =>
						row
							? { kind: "written", job: row }
							: { kind: "error", error: new Error(`the finish of ${job.id} wrote nothing after its batch failed`) },
					(error: unknown): FinishAnswer => ({ kind: "error", error }),
				),
			),
		);
	}
	let offset = counts.length;
	let settleOffset = counts.length + writes.reduce((n, w) => n + w.statements.length, 0);
	const finished = writes.map((write) => {
		const own = results.slice(offset, offset + write.statements.length);
		const settled = results.slice(settleOffset, settleOffset + write.settle.length);
		offset += write.statements.length;
		settleOffset += write.settle.length;
		return write.read(own, settled);
	});
	await announce(
		env,
		finished.filter((f): f is FinishedJob => f !== null),
	);
	return finished.map((f): FinishAnswer => ({ kind: "written", job: f?.job ?? null }));
}

/**
 * The live streams and the webhook fan-out, both at once: one notice and one send for every event
 * of the group (neither waits for the other; each failure is logged and left to its own recovery).
 */
async function announce(env: FinishEnv, finished: FinishedJob[]): Promise<void> {
	if (finished.length === 0) return;
	const batchEvents = finished.flatMap((f) => (f.batch ? [f.batch] : []));
	const bodies = [
		// An event recorded dispatched (no target) needs no fan-out (shared/webhooks/outbox.ts,
		// EventDispatch), only a batch job's, for its batch's progress.
		...finished
			.filter((f) => !f.dispatched || f.job.batch_id !== null)
			.map((f): JobEventMessage => ({ kind: "job-event", event_id: f.eventId, job_id: f.job.id })),
		...batchEvents.map(batchEventMessage),
	];
	await Promise.all([
		notifyEventHub(env.EVENT_HUB, [...finished.map((f) => f.eventId), ...batchEvents.map((b) => b.eventId)]),
		sendAll(env.WEBHOOK_DELIVERIES, bodies).catch((err) =>
			log("warn", "queue_send_failed", {
				queue: "webhook-deliveries",
				event_ids: bodies.map((b) => b.event_id),
				error: errorMessage(err),
			}),
		),
	]);
}
