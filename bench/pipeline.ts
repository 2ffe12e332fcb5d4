/**
 * The end-to-end scenario: N uploads through `PUT /v1/images/{key}` (bounded concurrency), then
 * waiting until every job is terminal, then reading every job back through `GET /v1/jobs` to
 * measure throughput (upload start to last stored caption), per-image overhead and failures.
 */
import { readFile } from "node:fs/promises";
import { stripVTControlCharacters } from "node:util";
import { createR2cClient, type Job, listAllJobs, ok, uploadImage } from "../client/index.ts";
import type { Stack } from "./stack.ts";
import { percentile, round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

export interface PipelineResult {
	n: number;
	succeeded: number;
	failed: number;
	notTerminal: number;
	failureCodes: Record<string, number>;
	uploadSeconds: number;
	wallSeconds: number;
	imagesPerSecond: number;
	/** Wall time per image: the inverse of throughput. */
	msPerImage: number;
	/**
	 * Consumer time per image beyond the model: (batch p50 − the model latency on the batch's
	 * critical path) / batch size. The critical path holds one latency when a batch's messages run
	 * concurrently and one per message when they run one after another.
	 */
	overheadMsPerImage: number;
	/** Time a job spends outside the model call: total_ms − inference_ms (includes queue wait). */
	overheadMs: { p50: number; p99: number };
	/** Consumer time outside the model: completed − started − inference. */
	consumerOverheadMs: { p50: number; p99: number };
	totalMs: { p50: number; p99: number };
	inferenceMs: { p50: number };
	retriedJobs: number;
	/** CPU time per image of the workerd process (all Workers, D1, R2, queues) and of wrangler's
	 * Node process (HTTP proxy, logs, Images emulation), from /proc/<pid>/stat. */
	cpuMsPerImage: { workerd: number; wrangler: number };
	/** From wrangler's `QUEUE caption-jobs n/m (ms)` lines. */
	batches: { count: number; meanSize: number; p50Ms: number; p90Ms: number };
	/** Most jobs between started_at and completed_at at the same moment (consumer concurrency). */
	maxJobsInFlight: number;
}

/** The typed client of the stack's status API. */
export const api = (stack: Stack) => createR2cClient({ baseUrl: stack.url, token: stack.token });

export async function uploadAll(stack: Stack, prefix: string, images: WorkloadImage[], n: number, concurrency: number) {
	const client = api(stack);
	let next = 0;
	const worker = async () => {
		while (next < n) {
			const i = next++;
			const image = images[i % images.length] as WorkloadImage;
			await uploadImage(client, `${prefix}${String(i).padStart(6, "0")}-${image.name}`, new Blob([image.bytes]));
		}
	};
	await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

/** Polls cheap indexed list queries until no job is queued or processing (bounded by `timeoutMs`). */
export async function waitUntilTerminal(stack: Stack, timeoutMs: number): Promise<boolean> {
	const client = api(stack);
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		const pages = await Promise.all(
			(["queued", "processing"] as const).map((status) =>
				ok(client.GET("/v1/jobs", { params: { query: { status, limit: 1 } } })),
			),
		);
		if (pages.every((page) => page.data.length === 0)) return true;
		await new Promise((r) => setTimeout(r, 500));
	}
	return false;
}

export const jobsUnder = (stack: Stack, prefix: string, max = 200_000): Promise<Job[]> =>
	listAllJobs(api(stack), { prefix }, max);

/** Batch sizes and durations of the caption queue, from wrangler's log, for lines after `fromLine`. */
export async function queueBatches(logPath: string, fromLine = 0) {
	const lines = (await readFile(logPath, "utf8")).split("\n").slice(fromLine);
	const batches: { size: number; ms: number }[] = [];
	for (const line of lines) {
		const m = /QUEUE caption-jobs (\d+)\/(\d+) \((\d+)ms\)/.exec(stripVTControlCharacters(line));
		if (m) batches.push({ size: Number(m[2]), ms: Number(m[3]) });
	}
	return batches;
}

function maxOverlap(jobs: Job[]): number {
	const events: [number, number][] = [];
	for (const j of jobs) {
		if (!j.started_at || !j.completed_at) continue;
		events.push([Date.parse(j.started_at), 1], [Date.parse(j.completed_at), -1]);
	}
	// Ends sort before starts at the same millisecond, so back-to-back jobs do not count as overlapping.
	events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
	let current = 0;
	let max = 0;
	for (const [, delta] of events) {
		current += delta;
		max = Math.max(max, current);
	}
	return max;
}

/** User + system CPU time of a process in ms (clock ticks of 10 ms on Linux). */
export async function cpuMs(pid: number): Promise<number> {
	const stat = await readFile(`/proc/${pid}/stat`, "utf8");
	const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	// utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command.
	return (Number(fields[11]) + Number(fields[12])) * 10;
}

export const logLineCount = async (logPath: string) => (await readFile(logPath, "utf8")).split("\n").length;

export async function runPipeline(
	stack: Stack,
	options: {
		prefix: string;
		images: WorkloadImage[];
		n: number;
		concurrency: number;
		timeoutMs: number;
		/** The emulator's added latency per model call. */
		latencyMs: number;
	},
): Promise<{ summary: PipelineResult; jobs: Job[] }> {
	const fromLine = await logLineCount(stack.logPath);
	const cpuBefore = [await cpuMs(stack.workerdPid), await cpuMs(stack.wranglerPid)] as const;
	const started = Date.now();
	await uploadAll(stack, options.prefix, options.images, options.n, options.concurrency);
	const uploaded = Date.now();
	await waitUntilTerminal(stack, options.timeoutMs);
	const cpuAfter = [await cpuMs(stack.workerdPid), await cpuMs(stack.wranglerPid)] as const;
	const jobs = await jobsUnder(stack, options.prefix);
	const done = jobs.filter((j) => j.status === "succeeded" || j.status === "failed");
	const lastCompleted = Math.max(
		uploaded,
		...done.map((j) => Date.parse(j.completed_at ?? "")).filter(Number.isFinite),
	);
	const succeeded = jobs.filter((j) => j.status === "succeeded");
	const failureCodes: Record<string, number> = {};
	for (const j of jobs.filter((j) => j.status === "failed")) {
		const code = j.error?.code ?? "unknown";
		failureCodes[code] = (failureCodes[code] ?? 0) + 1;
	}
	const overhead = succeeded.map((j) => (j.metrics.total_ms ?? 0) - (j.metrics.inference_ms ?? 0));
	const consumerOverhead = succeeded.map(
		(j) => Date.parse(j.completed_at ?? "") - Date.parse(j.started_at ?? "") - (j.metrics.inference_ms ?? 0),
	);
	const batches = await queueBatches(stack.logPath, fromLine);
	const wallSeconds = (lastCompleted - started) / 1000;
	const meanBatch = batches.reduce((sum, b) => sum + b.size, 0) / Math.max(1, batches.length);
	const inFlight = Math.max(1, Math.min(maxOverlap(done), meanBatch));
	const batchP50 = percentile(
		batches.map((b) => b.ms),
		50,
	);
	const criticalPathMs = options.latencyMs * Math.ceil(meanBatch / inFlight);
	const summary: PipelineResult = {
		n: options.n,
		succeeded: succeeded.length,
		failed: jobs.filter((j) => j.status === "failed").length,
		notTerminal: options.n - done.length,
		failureCodes,
		uploadSeconds: round((uploaded - started) / 1000, 2),
		wallSeconds: round(wallSeconds, 2),
		imagesPerSecond: round(succeeded.length / wallSeconds, 2),
		msPerImage: round((wallSeconds * 1000) / Math.max(1, succeeded.length), 1),
		overheadMsPerImage: round((batchP50 - criticalPathMs) / Math.max(1, meanBatch), 1),
		overheadMs: { p50: percentile(overhead, 50), p99: percentile(overhead, 99) },
		consumerOverheadMs: { p50: percentile(consumerOverhead, 50), p99: percentile(consumerOverhead, 99) },
		totalMs: {
			p50: percentile(
				succeeded.map((j) => j.metrics.total_ms ?? 0),
				50,
			),
			p99: percentile(
				succeeded.map((j) => j.metrics.total_ms ?? 0),
				99,
			),
		},
		inferenceMs: {
			p50: percentile(
				succeeded.map((j) => j.metrics.inference_ms ?? 0),
				50,
			),
		},
		retriedJobs: jobs.filter((j) => j.attempts > 1).length,
		cpuMsPerImage: {
			workerd: round((cpuAfter[0] - cpuBefore[0]) / options.n, 1),
			wrangler: round((cpuAfter[1] - cpuBefore[1]) / options.n, 1),
		},
		batches: {
			count: batches.length,
			meanSize: round(batches.reduce((s, b) => s + b.size, 0) / Math.max(1, batches.length), 1),
			p50Ms: percentile(
				batches.map((b) => b.ms),
				50,
			),
			p90Ms: percentile(
				batches.map((b) => b.ms),
				90,
			),
		},
		maxJobsInFlight: maxOverlap(done),
	};
	return { summary, jobs };
}
