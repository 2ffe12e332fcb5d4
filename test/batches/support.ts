/**
 * Helpers for the batch tests: batches through the API, objects put straight into the bucket (as
 * in a backfill: no notification), one listing page delivered by hand, and the rows behind a batch.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { z } from "zod";
import { Batch, type BatchCounts } from "../../shared/batches/schema";
import type { JobRow } from "../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../shared/jobs/texts";
import { batchPage } from "../../shared/queue/batch-listing";
import consumer from "../../workers/consumer/index";
import { createBatch as insertBatch, type NewBatch } from "../../workers/status/batches/store";
import { call, parsed } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { until } from "../support/poll";
import { type RunOptions, runConsumer, runQueueHandler } from "../support/queue";

/** Puts objects into the bucket directly (no notification, no job): what a backfill starts from. */
export async function putObjects(keys: string[], name = "small.jpg"): Promise<void> {
	const bytes = await fixture(name);
	for (const key of keys) await env.BUCKET.put(key, bytes);
}

export async function createBatch(body: Record<string, unknown>, token?: string): Promise<Batch> {
	const res = await call("POST", "/v1/batches", { json: body, ...(token ? { token } : {}) });
	if (res.status !== 202) throw new Error(`batch creation failed: ${res.status} ${await res.text()}`);
	return parsed(res, Batch);
}

export async function getBatch(id: string, token?: string): Promise<Batch> {
	const res = await call("GET", `/v1/batches/${id}`, token ? { token } : {});
	expect(res.status).toBe(200);
	return parsed(res, Batch);
}

/** Polls the batch until `done` says so (paths through the real queues). */
export function waitForBatch(id: string, done: (b: Batch) => boolean, timeoutMs = 25_000): Promise<Batch> {
	let last: Batch | undefined;
	return until(
		() => `batch ${id} did not get there: ${JSON.stringify(last)}`,
		async () => {
			last = await getBatch(id);
			return done(last) ? last : undefined;
		},
		timeoutMs,
	);
}

export const settled = (b: Batch) => b.completed_at !== null;

/**
 * A prefix batch inserted with the status Worker's own store function but without its first page
 * message, so that the test delivers the pages itself (deliverPage) or leaves them lost. No limit of
 * open batches per key applies.
 */
export async function unsentBatch(prefix: string, options: Partial<NewBatch> = {}): Promise<Batch> {
	const created = await insertBatch(
		env.DB,
		{
			bucket: "images",
			source: { prefix },
			prompt: null,
			maxTokens: null,
			callbackUrl: null,
			metadata: {},
			skipCaptioned: true,
			recaption: null,
			dryRun: false,
			spillover: false,
			keyId: null,
			...options,
		},
		Number.MAX_SAFE_INTEGER,
	);
	if (created.kind !== "created") throw new Error("the batch was not inserted");
	return getBatch(created.batch.id);
}

/**
 * Delivers page `page` of a batch's listing to the consumer, as the `batch-listing` queue would.
 * By default the page's follow-up messages (the next page, and caption messages when asked) go to
 * `held-messages`, a real queue nothing consumes, so the test decides what is delivered next.
 */
export function deliverPage(batchId: string, page: number, options: RunOptions & { holdCaptions?: boolean } = {}) {
	const held = {
		BATCH_LISTING: env.HELD_MESSAGES,
		...(options.holdCaptions ? { CAPTION_JOBS: env.HELD_MESSAGES, CAPTION_BATCH_JOBS: env.HELD_MESSAGES } : {}),
	};
	return runQueueHandler(consumer.queue, "batch-listing", [batchPage(batchId, page)], {
		...options,
		env: { ...held, ...options.env },
	});
}

export async function jobsOfBatch(batchId: string): Promise<JobRow[]> {
	const { results } = await env.DB.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE batch_id = ? ORDER BY key`)
		.bind(batchId)
		.all<JobRow>();
	return results;
}

/** Batch counts with every count not given at 0, and `total` their sum. */
export function counts(given: Partial<Omit<BatchCounts, "total">>): BatchCounts {
	const c = { queued: 0, processing: 0, succeeded: 0, failed: 0, cancelled: 0, skipped: 0, missing: 0, ...given };
	return { total: Object.values(c).reduce((a, b) => a + b, 0), ...c };
}

/** The counts a batch's job rows, skips and missing keys add up to, computed the expensive way (COUNT over rows). */
export async function countedFromRows(batchId: string): Promise<BatchCounts> {
	const jobs = await jobsOfBatch(batchId);
	const skipped = await env.DB.prepare("SELECT count(*) AS n FROM batch_skips WHERE batch_id = ?")
		.bind(batchId)
		.first<number>("n");
	const missing = await env.DB.prepare("SELECT count(*) AS n FROM batch_missing WHERE batch_id = ?")
		.bind(batchId)
		.first<number>("n");
	const by = (status: string) => jobs.filter((j) => j.status === status).length;
	return {
		total: jobs.length + (skipped ?? 0) + (missing ?? 0),
		queued: by("queued"),
		processing: by("processing"),
		succeeded: by("succeeded"),
		failed: by("failed"),
		cancelled: by("cancelled"),
		skipped: skipped ?? 0,
		missing: missing ?? 0,
	};
}

const BatchDelivery = z.object({
	subscription_id: z.string().nullable(),
	target: z.string(),
	status: z.string(),
	attempts: z.number(),
});

/**
 * Waits until the batch's final event has been fanned out and every delivery of it has settled
 * (delivered or failed); returns those deliveries. Once this holds, nothing more is sent for it.
 */
export function batchEventDeliveries(batchId: string): Promise<z.infer<typeof BatchDelivery>[]> {
	return until(`the event of batch ${batchId} was not delivered`, async () => {
		const event = await env.DB.prepare(
			"SELECT id, dispatched_at FROM webhook_events WHERE batch_id = ? AND type <> 'batch.progress'",
		)
			.bind(batchId)
			.first<{ id: string; dispatched_at: number | null }>();
		if (!event || event.dispatched_at === null) return undefined;
		const { results } = await env.DB.prepare(
			"SELECT subscription_id, coalesce(subscription_id, 'callback') AS target, status, attempts FROM webhook_deliveries WHERE event_id = ?",
		)
			.bind(event.id)
			.all();
		const deliveries = results.map((r) => BatchDelivery.parse(r));
		return deliveries.some((d) => d.status === "pending") ? undefined : deliveries;
	});
}

/** Keys that have more than one job in the batch (there must be none). */
export async function duplicateKeys(batchId: string): Promise<string[]> {
	const { results } = await env.DB.prepare("SELECT key FROM jobs WHERE batch_id = ? GROUP BY key HAVING count(*) > 1")
		.bind(batchId)
		.all<{ key: string }>();
	return results.map((r) => r.key);
}

/** A caption message for one job, through the real consumer (the page's own messages are held back). */
export const captionJob = (jobId: string) =>
	runConsumer([{ kind: "caption-job", job_id: jobId }], { env: { CAPTION_JOBS: env.HELD_MESSAGES } });

/** A batch of `n` images under `prefix` (plus one file that is not an image when `withText`) whose jobs are all queued, none run. */
export async function queuedBatch(n: number, withText = false, prefix = uniqueKey("live/")) {
	const keys = Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(2, "0")}.jpg`);
	await putObjects(keys);
	if (withText) await env.BUCKET.put(`${prefix}notes.md`, "plain text, not an image");
	const batch = await unsentBatch(prefix);
	const pages = Math.ceil((n + (withText ? 1 : 0)) / 3);
	for (let page = 0; page < pages; page++) await deliverPage(batch.id, page, { holdCaptions: true });
	const jobs = await jobsOfBatch(batch.id);
	expect(jobs.every((j) => j.status === "queued")).toBe(true);
	expect((await getBatch(batch.id)).status).toBe("running");
	return { batch, jobs };
}

/** Captions each object once with `model` as the whole chain (the real consumer, no queue). */
export async function captionAll(keys: string[], model: string): Promise<void> {
	const jobs = [];
	for (const key of keys) {
		const head = await env.BUCKET.head(key);
		jobs.push(await insertJob({ key, etag: head?.etag ?? "", size: head?.size ?? null }));
	}
	await runConsumer(
		jobs.map((j) => ({ kind: "caption-job", job_id: j.id })),
		{ env: { MODEL_CHAIN: model } },
	);
}
