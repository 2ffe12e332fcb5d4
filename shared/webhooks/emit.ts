/**
 * Hand-off from the consumer to webhook delivery: a job that reached its terminal state becomes
 * one `job.succeeded` / `job.failed` event on the `webhook-deliveries` queue.
 */
import type { JobRow } from "../jobs/schema";

export interface JobEventMessage {
	kind: "job-event";
	type: "job.succeeded" | "job.failed";
	job_id: string;
}

export async function emitJobFinished(env: { WEBHOOK_DELIVERIES: Queue }, job: JobRow): Promise<void> {
	if (job.status !== "succeeded" && job.status !== "failed") return;
	const message: JobEventMessage = { kind: "job-event", type: `job.${job.status}`, job_id: job.id };
	await env.WEBHOOK_DELIVERIES.send(message, { contentType: "json" });
}
