/** Runs the consumer's queue handler on a batch, the way the Queues runtime would. */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import type { JobRow } from "../../shared/jobs/schema";
import consumer from "../../workers/consumer/index";

let sequence = 0;

export async function runConsumer(bodies: unknown[], options: { queue?: string; attempts?: number } = {}) {
	const messages = bodies.map((body) => ({
		id: `msg-${++sequence}`,
		timestamp: new Date(),
		attempts: options.attempts ?? 1,
		body,
	}));
	const batch = createMessageBatch(options.queue ?? "caption-jobs", messages);
	const ctx = createExecutionContext();
	await consumer.queue(batch, env, ctx);
	const result = await getQueueResult(batch, ctx);
	return { ids: messages.map((m) => m.id), result };
}

export async function jobsForKey(key: string): Promise<JobRow[]> {
	const { results } = await env.DB.prepare("SELECT * FROM jobs WHERE key = ? ORDER BY created_at")
		.bind(key)
		.all<JobRow>();
	return results;
}

export async function onlyJob(key: string): Promise<JobRow> {
	const jobs = await jobsForKey(key);
	if (jobs.length !== 1) throw new Error(`expected one job for ${key}, found ${jobs.length}`);
	return jobs[0] as JobRow;
}
