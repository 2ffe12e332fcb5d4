/**
 * The rate-limit scenarios: the emulator enforces Workers AI's per-task-type limits (Image-to-Text
 * 720 requests per minute, Text Generation 300; 3021 beyond them), with the minute shortened by
 * EMULATOR_TIME_SCALE so the run covers several windows in little time. The consumer paces each
 * limit, scaled the same way (MODEL_RATE_LIMITS). Sustained throughput is measured over the run's
 * steady state (after its first tenth) and compared with the limit of the task type the traffic
 * ends up on; failed jobs, 3021 answers and the calls spent on a retired model are counted from
 * the consumer's `model_call_failed` log lines and from `GET /v1/models`.
 */
import { readFile } from "node:fs/promises";
import { stripVTControlCharacters } from "node:util";
import type { Job } from "../client/index.ts";
import { api, logLineCount, runPipeline } from "./pipeline.ts";
import { type StackOptions, startStack } from "./stack.ts";
import { round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

/** Workers AI's limits per task type (requests per minute per account). */
export const WORKERS_AI_LIMITS = { "Image-to-Text": 720, "Text Generation": 300 } as const;
export type Task = keyof typeof WORKERS_AI_LIMITS;

export interface RateLimitResult {
	label: string;
	n: number;
	/** The consumer's MODEL_CHAIN. */
	chain: string[];
	/** The task type whose limit the traffic meets. */
	task: Task;
	timeScale: number;
	/** The emulator's limit in real time: e.g. 300 per (60 / timeScale) seconds. */
	limitPerSecond: number;
	/** MODEL_RATE_LIMITS given to the consumer (already multiplied by timeScale); "off" = no pacing. */
	pacing: string;
	sustainedPerSecond: number;
	fractionOfLimit: number;
	/** Over the whole run, uploads and drain included. */
	overallPerSecond: number;
	succeeded: number;
	failed: number;
	notTerminal: number;
	/** Jobs that needed more than one delivery. */
	retriedJobs: number;
	/** Model calls answered with 3021 (from the consumer's model_call_failed log lines). */
	rateLimitedCalls: number;
	/** The retired model at the head of the chain, if any, and the calls spent on it. */
	retired: { model: string; callsLogged: number; callsReported: number | null } | null;
	wallSeconds: number;
}

/**
 * Captions per second in the steady state, when the queue holds a backlog and no upload competes
 * for the machine: from the later of the completion that ends the first tenth of the run (at least
 * the first 10, a pacer's burst allowance) and the last upload, to the completion that starts the
 * last tenth. The first tenth holds the burst a limiter allows once, not per second; the last holds
 * the drain, where a final partial batch waits out the local queue's max_batch_timeout.
 */
export function sustainedRate(jobs: Job[]): number {
	const times = jobs
		.filter((j) => j.status === "succeeded" && j.completed_at)
		.map((j) => Date.parse(j.completed_at ?? ""))
		.sort((a, b) => a - b);
	const skip = Math.max(10, Math.floor(times.length / 10));
	const lastUpload = Math.max(...jobs.map((j) => Date.parse(j.created_at)));
	const first = Math.max(
		skip,
		times.findIndex((t) => t >= lastUpload),
	);
	const last = times.length - 1 - skip;
	if (last - first < 10) return 0;
	return (last - first) / (((times[last] as number) - (times[first] as number)) / 1000);
}

/** Captions per second over the whole run: first completion to last, uploads and drain included. */
export function overallRate(jobs: Job[]): number {
	const times = jobs.filter((j) => j.completed_at).map((j) => Date.parse(j.completed_at ?? ""));
	const span = (Math.max(...times) - Math.min(...times)) / 1000;
	return span > 0 ? (times.length - 1) / span : 0;
}

interface FailedCall {
	model: string;
	code: number | null;
}

/** The consumer's `model_call_failed` events in wrangler's output since `fromLine`. */
export function failedCalls(log: string[]): FailedCall[] {
	const calls: FailedCall[] = [];
	for (const raw of log) {
		const line = stripVTControlCharacters(raw);
		const start = line.indexOf('{"level"');
		if (start < 0 || !line.includes('"model_call_failed"')) continue;
		try {
			const event = JSON.parse(line.slice(start, line.lastIndexOf("}") + 1)) as { model: string; code: number | null };
			calls.push({ model: event.model, code: event.code });
		} catch {
			// A line cut by another process's output: not an event.
		}
	}
	return calls;
}

export async function runRateLimit(options: {
	label: string;
	stack: Omit<StackOptions, "vars" | "consumer">;
	images: WorkloadImage[];
	n: number;
	timeScale: number;
	/** The consumer's model chain; a retired model first shows what the fallback costs. */
	chain: string[];
	/** The task type the traffic is expected to end up on. */
	task: Task;
	/** The retired model at the head of the chain, if any. */
	retired?: string;
	paced: boolean;
	timeoutMs: number;
}): Promise<RateLimitResult> {
	const s = options.timeScale;
	const pacing = options.paced
		? `Image-to-Text=${WORKERS_AI_LIMITS["Image-to-Text"] * s}, Text Generation=${WORKERS_AI_LIMITS["Text Generation"] * s}`
		: "off";
	const chain = options.chain.join(",");
	const stack = await startStack({
		...options.stack,
		consumer: "real",
		vars: {
			MODEL_CHAIN: chain,
			EMULATOR_LATENCY_MS: "0",
			EMULATOR_RATE_LIMITS: "Image-to-Text=720, Text Generation=300",
			EMULATOR_TIME_SCALE: String(s),
			MODEL_RATE_LIMITS: pacing,
		},
	});
	try {
		const fromLine = await logLineCount(stack.logPath);
		const { summary, jobs } = await runPipeline(stack, {
			prefix: `rate/${options.label}/`,
			images: options.images,
			n: options.n,
			concurrency: 16,
			timeoutMs: options.timeoutMs,
			latencyMs: 0,
		});
		const log = (await readFile(stack.logPath, "utf8")).split("\n").slice(fromLine);
		const failed = failedCalls(log);
		const limitPerSecond = (WORKERS_AI_LIMITS[options.task] * s) / 60;
		const sustained = sustainedRate(jobs);
		let retired: RateLimitResult["retired"] = null;
		if (options.retired) {
			const { data } = await api(stack).GET("/v1/models");
			const models = data?.data ?? [];
			retired = {
				model: options.retired,
				callsLogged: failed.filter((c) => c.model === options.retired).length,
				callsReported: models.find((m) => m.id === options.retired)?.calls_1h ?? null,
			};
		}
		return {
			label: options.label,
			n: options.n,
			chain: options.chain,
			task: options.task,
			timeScale: s,
			limitPerSecond: round(limitPerSecond, 1),
			pacing,
			sustainedPerSecond: round(sustained, 2),
			fractionOfLimit: round(sustained / limitPerSecond, 3),
			overallPerSecond: round(overallRate(jobs), 2),
			succeeded: summary.succeeded,
			failed: summary.failed,
			notTerminal: summary.notTerminal,
			retriedJobs: summary.retriedJobs,
			rateLimitedCalls: failed.filter((c) => c.code === 3021).length,
			retired,
			wallSeconds: summary.wallSeconds,
		};
	} finally {
		await stack.stop();
	}
}
