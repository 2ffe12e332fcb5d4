/** Runs the consumer's queue handler on a batch, the way the Queues runtime would. */
import {
	createExecutionContext,
	createMessageBatch,
	createScheduledController,
	getQueueResult,
	waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { z } from "zod";
import { parseRows } from "../../shared/d1-rows";
import { JobRow } from "../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../shared/jobs/texts";
import consumer from "../../workers/consumer/index";
import { imagesWithInputLimit } from "./images";
import { observeOutcomes } from "./outcomes";
import { until } from "./poll";

let sequence = 0;

/** A batch that hands every call on to the real messages and notes the retry delays they ask for. */
function observeRetries<Body>(batch: MessageBatch<Body>) {
	const retryDelays = new Map<string, number | undefined>();
	const observed = observeOutcomes(batch, (message, outcome) => {
		if (outcome.kind === "retry") retryDelays.set(message.id, outcome.delaySeconds);
	});
	return { observed, retryDelays };
}

export interface RunOptions {
	queue?: string;
	attempts?: number;
	/** Settings or bindings to change for this run, e.g. { MAX_OBJECT_BYTES: "100" }. */
	env?: Partial<TestEnv>;
}

/** Runs a Worker's queue handler on one batch of `bodies` from `queue`, as the Queues runtime would. */
export async function runQueueHandler(
	handler: (batch: MessageBatch<unknown>, env: TestEnv, ctx: ExecutionContext) => Promise<void>,
	queue: string,
	bodies: unknown[],
	options: Omit<RunOptions, "queue"> = {},
) {
	const messages = bodies.map((body) => ({
		id: `msg-${++sequence}`,
		timestamp: new Date(),
		attempts: options.attempts ?? 1,
		body,
	}));
	const batch = createMessageBatch(queue, messages);
	const { observed, retryDelays } = observeRetries(batch);
	const ctx = createExecutionContext();
	// The Images binding as the service takes it: no input over its documented limit.
	await handler(observed, { ...env, IMAGES: imagesWithInputLimit(env.IMAGES), ...options.env }, ctx);
	const result = await getQueueResult(batch, ctx);
	return { ids: messages.map((m) => m.id), result, retryDelays };
}

export function runConsumer(bodies: unknown[], options: RunOptions = {}) {
	return runQueueHandler(consumer.queue, options.queue ?? "caption-jobs", bodies, options);
}

export async function jobsForKey(key: string): Promise<JobRow[]> {
	return env.DB.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE key = ? ORDER BY created_at`)
		.bind(key)
		.all()
		.then(parseRows(JobRow));
}

export async function onlyJob(key: string): Promise<JobRow> {
	const [job, ...others] = await jobsForKey(key);
	if (!job || others.length > 0) throw new Error(`expected one job for ${key}, found ${others.length + (job ? 1 : 0)}`);
	return job;
}

/** The value of a service counter (0 before its first increment). */
export async function counter(name: string): Promise<number> {
	const value = await env.DB.prepare("SELECT value FROM counters WHERE name = ?").bind(name).first("value");
	return z.number().parse(value ?? 0);
}

/** Runs the consumer's cron handler (the lease sweeper) to completion. */
export async function runScheduled(): Promise<void> {
	const ctx = createExecutionContext();
	await consumer.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
	await waitOnExecutionContext(ctx);
}

/** Polls D1 until the only job of `key` is terminal (for paths through the real queues). */
export async function waitForTerminal(key: string, timeoutMs = 15_000): Promise<JobRow> {
	return until(
		`the job for ${key} did not finish`,
		async () => {
			const [job] = await jobsForKey(key);
			return job && (job.status === "succeeded" || job.status === "failed") ? job : undefined;
		},
		timeoutMs,
	);
}
