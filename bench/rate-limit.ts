/**
 * The rate-limit scenario: the emulator enforces Workers AI's 720 image-to-text requests per
 * minute (3021 beyond it), with the minute shortened by EMULATOR_TIME_SCALE so the run covers
 * several windows in little time. The consumer paces itself at MODEL_REQUESTS_PER_MINUTE, scaled
 * the same way. Sustained throughput is measured over the run's steady state (after its first
 * tenth) and compared with the limit; failed jobs and 3021 answers are counted.
 */
import { readFile } from "node:fs/promises";
import type { Job } from "../client/index.ts";
import { logLineCount, runPipeline } from "./pipeline.ts";
import { type StackOptions, startStack } from "./stack.ts";
import { round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

export const WORKERS_AI_IMAGE_TO_TEXT_RPM = 720;

export interface RateLimitResult {
	label: string;
	n: number;
	timeScale: number;
	/** The emulator's limit in real time: 720 per (60 / timeScale) seconds. */
	limitPerSecond: number;
	/** MODEL_REQUESTS_PER_MINUTE given to the consumer (already multiplied by timeScale); 0 = no pacing. */
	pacedRequestsPerMinute: number;
	sustainedPerSecond: number;
	fractionOfLimit: number;
	succeeded: number;
	failed: number;
	notTerminal: number;
	/** Jobs that needed more than one delivery. */
	retriedJobs: number;
	/** Model calls answered with 3021 (from the consumer's job_retry log lines). */
	rateLimitedCalls: number;
	wallSeconds: number;
}

/**
 * Captions per second in the steady state: from the completion that ends the first tenth of the
 * run (at least the first 10, a pacer's burst allowance) to the last one. Counting from the very
 * first completion would credit the initial burst, which a limiter allows once, not per second.
 */
export function sustainedRate(jobs: Job[]): number {
	const times = jobs
		.filter((j) => j.status === "succeeded" && j.completed_at)
		.map((j) => Date.parse(j.completed_at ?? ""))
		.sort((a, b) => a - b);
	const skip = Math.max(10, Math.floor(times.length / 10));
	if (times.length < skip + 2) return 0;
	const from = times[skip] as number;
	const to = times.at(-1) as number;
	return to > from ? (times.length - 1 - skip) / ((to - from) / 1000) : 0;
}

export async function runRateLimit(options: {
	label: string;
	stack: Omit<StackOptions, "vars" | "consumer">;
	images: WorkloadImage[];
	n: number;
	timeScale: number;
	/** Pacing per real minute before scaling (the consumer's default is 700); 0 turns it off. */
	pacedRpm: number;
	timeoutMs: number;
}): Promise<RateLimitResult> {
	const paced = Math.round(options.pacedRpm * options.timeScale);
	const stack = await startStack({
		...options.stack,
		consumer: "real",
		vars: {
			EMULATOR_LATENCY_MS: "0",
			EMULATOR_REQUESTS_PER_MINUTE: String(WORKERS_AI_IMAGE_TO_TEXT_RPM),
			EMULATOR_TIME_SCALE: String(options.timeScale),
			MODEL_REQUESTS_PER_MINUTE: String(paced),
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
		const limitPerSecond = (WORKERS_AI_IMAGE_TO_TEXT_RPM * options.timeScale) / 60;
		const sustained = sustainedRate(jobs);
		return {
			label: options.label,
			n: options.n,
			timeScale: options.timeScale,
			limitPerSecond: round(limitPerSecond, 1),
			pacedRequestsPerMinute: paced,
			sustainedPerSecond: round(sustained, 2),
			fractionOfLimit: round(sustained / limitPerSecond, 3),
			succeeded: summary.succeeded,
			failed: summary.failed,
			notTerminal: summary.notTerminal,
			retriedJobs: summary.retriedJobs,
			rateLimitedCalls: log.filter((l) => l.includes('"job_retry"') && l.includes("3021")).length,
			wallSeconds: summary.wallSeconds,
		};
	} finally {
		await stack.stop();
	}
}
