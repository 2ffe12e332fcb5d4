/**
 * The scheduling scenarios (`--only lanes`), with the emulator enforcing Workers AI's limits per
 * task type and the consumer pacing them, both time-scaled as the rate scenarios are (the minute
 * lasts 60 / scale seconds, the limits count per that minute):
 *
 * - interactive: time-to-caption (created → completed) of jobs made with `POST /v1/jobs`, one every
 *   `gapMs`, on an idle service and then while an admin backfill of `n` objects keeps the
 *   Image-to-Text limit busy (the backfill is cancelled once they are measured);
 * - two keys: two API keys' backfills of n / 2 objects each, started together: each one's captions
 *   per second while both run, and their ratio;
 * - spillover: a backfill of `n` with `"spillover": true`: sustained captions per second against
 *   Image-to-Text + Text Generation, and the 3021 answers.
 *
 * Objects are put straight into the bucket (no notification, no job): only the scenario's own jobs run.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { type Job, ok } from "../client/index.ts";
import { type Bundles, seedObjects } from "./batches.ts";
import { api, logLineCount } from "./pipeline.ts";
import { failedCalls, sustainedRate, WORKERS_AI_LIMITS } from "./rate-limit.ts";
import { migratedState, type Stack, startStack } from "./stack.ts";
import { percentile, round } from "./stats.ts";

export interface LanesResult {
	n: number;
	interactive: number;
	timeScale: number;
	gapMs: number;
	idle: { p50Ms: number; p95Ms: number };
	duringBackfill: { p50Ms: number; p95Ms: number; backfillSucceededMeanwhile: number };
	p95Ratio: number;
	twoKeys: { perSecondA: number; perSecondB: number; ratio: number; cap: string };
	spillover: {
		sustainedPerSecond: number;
		limitPerSecond: number;
		fraction: number;
		byModel: Record<string, number>;
		rateLimitedCalls: number;
		failed: number;
	};
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface BatchJson {
	id: string;
	status: string;
	created_at: string;
	completed_at: string | null;
	counts: Record<string, number>;
	models: Record<string, number>;
}

async function post<T>(stack: Stack, route: string, body: unknown, token = stack.token): Promise<T> {
	const res = await fetch(`${stack.url}${route}`, {
		method: "POST",
		headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
		body: JSON.stringify(body),
	});
	if (!res.ok) throw new Error(`POST ${route}: ${res.status} ${await res.text()}`);
	return (await res.json()) as T;
}

const getBatch = (stack: Stack, id: string) =>
	ok(api(stack).GET("/v1/batches/{id}", { params: { path: { id } } })) as Promise<BatchJson>;

async function batchDone(stack: Stack, id: string, timeoutMs: number): Promise<BatchJson> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const batch = await getBatch(stack, id);
		if (batch.completed_at !== null || Date.now() > deadline) return batch;
		await sleep(500);
	}
}

async function jobsOf(stack: Stack, query: { batch_id?: string; prefix?: string }): Promise<Job[]> {
	const jobs: Job[] = [];
	let cursor: string | undefined;
	do {
		const page = await ok(api(stack).GET("/v1/jobs", { params: { query: { ...query, limit: 100, cursor } } }));
		jobs.push(...page.data);
		cursor = page.next_cursor ?? undefined;
	} while (cursor);
	return jobs;
}

/** Makes one job per key with POST /v1/jobs, one every `gapMs`; returns their times to caption (ms). */
async function interactiveRun(stack: Stack, keys: string[], gapMs: number): Promise<number[]> {
	const ids: string[] = [];
	for (const key of keys) {
		ids.push((await post<{ id: string }>(stack, "/v1/jobs", { key })).id);
		await sleep(gapMs);
	}
	const deadline = Date.now() + 300_000;
	for (;;) {
		const jobs = await Promise.all(ids.map((id) => ok(api(stack).GET("/v1/jobs/{id}", { params: { path: { id } } }))));
		if (jobs.every((j) => j.completed_at !== null) || Date.now() > deadline) {
			return jobs.filter((j) => j.completed_at).map((j) => Date.parse(j.completed_at ?? "") - Date.parse(j.created_at));
		}
		await sleep(500);
	}
}

const pct = (values: number[]) => ({
	p50Ms: round(percentile(values, 50), 0),
	p95Ms: round(percentile(values, 95), 0),
});

/** Captions per second of a batch's jobs completed between `from` and `to` (ms). */
const rateBetween = (jobs: Job[], from: number, to: number) =>
	jobs.filter((j) => j.completed_at && Date.parse(j.completed_at) >= from && Date.parse(j.completed_at) <= to).length /
	((to - from) / 1000);

export async function runLanes(options: {
	bundles: Bundles;
	workDir: string;
	n: number;
	interactive: number;
	timeScale: number;
	log: (line: string) => void;
}): Promise<LanesResult> {
	const s = options.timeScale;
	const { n } = options;
	const half = Math.floor(options.interactive / 2);
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	options.log(`  seeding ${n} backfill, ${n} two-key and ${options.interactive} interactive objects`);
	await seedObjects(persistTo, "lanes/b/", n);
	await seedObjects(persistTo, "lanes/k1/", Math.floor(n / 2));
	await seedObjects(persistTo, "lanes/k2/", Math.floor(n / 2));
	await seedObjects(persistTo, "lanes/i/", options.interactive);
	const limits = `Image-to-Text=${WORKERS_AI_LIMITS["Image-to-Text"] * s}, Text Generation=${WORKERS_AI_LIMITS["Text Generation"] * s}`;
	const stack = await startStack({
		consumer: "real",
		bundles: options.bundles,
		persistTo,
		workDir: options.workDir,
		vars: {
			// Uploads enqueue nothing: only the scenario's jobs run.
			DEPLOY_MODE: "production",
			EMULATOR_LATENCY_MS: "0",
			EMULATOR_RATE_LIMITS: "Image-to-Text=720, Text Generation=300",
			EMULATOR_TIME_SCALE: String(s),
			MODEL_RATE_LIMITS: limits,
		},
	});
	try {
		const fromLine = await logLineCount(stack.logPath);
		// An interactive job every few slots: a quarter of the Image-to-Text limit.
		const gapMs = Math.round((60_000 / (WORKERS_AI_LIMITS["Image-to-Text"] * s)) * 4);
		const interactiveKeys = Array.from(
			{ length: options.interactive },
			(_, i) => `lanes/i/${String(i).padStart(6, "0")}.jpg`,
		);
		options.log(`  interactive on an idle service: ${half} jobs, one every ${gapMs} ms`);
		const idle = await interactiveRun(stack, interactiveKeys.slice(0, half), gapMs);

		options.log(`  interactive during a backfill of ${n}`);
		const backfill = await post<BatchJson>(stack, "/v1/batches", { prefix: "lanes/b/" });
		for (;;) {
			const b = await getBatch(stack, backfill.id);
			if ((b.counts.queued ?? 0) >= Math.min(n / 2, 500) || b.completed_at) break;
			await sleep(250);
		}
		const busy = await interactiveRun(stack, interactiveKeys.slice(half), gapMs);
		const meanwhile = (await getBatch(stack, backfill.id)).counts.succeeded ?? 0;
		await post(stack, `/v1/batches/${backfill.id}/cancel`, {});
		await batchDone(stack, backfill.id, 300_000);

		options.log(`  two keys' backfills of ${Math.floor(n / 2)} each`);
		const keyFor = (prefix: string) => post<{ token: string }>(stack, "/v1/keys", { prefix });
		const [ka, kb] = await Promise.all([keyFor("lanes/k1/"), keyFor("lanes/k2/")]);
		const [ba, bb] = await Promise.all([
			post<BatchJson>(stack, "/v1/batches", { prefix: "lanes/k1/" }, ka.token),
			post<BatchJson>(stack, "/v1/batches", { prefix: "lanes/k2/" }, kb.token),
		]);
		// Three times what the Image-to-Text pace alone would take, so a slower run is measured, not cut short.
		const paced = (jobs: number) =>
			Math.max(300_000, ((3 * jobs) / ((WORKERS_AI_LIMITS["Image-to-Text"] * s) / 60)) * 1000);
		const [da, db] = [await batchDone(stack, ba.id, paced(n)), await batchDone(stack, bb.id, paced(n))];
		const [ja, jb] = [await jobsOf(stack, { batch_id: ba.id }), await jobsOf(stack, { batch_id: bb.id })];
		const from = Math.max(Date.parse(da.created_at), Date.parse(db.created_at));
		const to = Math.min(Date.parse(da.completed_at ?? ""), Date.parse(db.completed_at ?? ""));
		const [ra, rb] = [rateBetween(ja, from, to), rateBetween(jb, from, to)];

		options.log(`  spillover backfill of ${n}`);
		const spill = await post<BatchJson>(stack, "/v1/batches", {
			prefix: "lanes/b/",
			spillover: true,
			skip_captioned: false,
		});
		const spilled = await batchDone(stack, spill.id, paced(n));
		if (spilled.completed_at === null || da.completed_at === null || db.completed_at === null) {
			throw new Error("lanes: a batch did not complete in time; its figures would be meaningless");
		}
		const spillJobs = await jobsOf(stack, { batch_id: spill.id });
		const log = (await readFile(stack.logPath, "utf8")).split("\n").slice(fromLine);
		const limitPerSecond = ((WORKERS_AI_LIMITS["Image-to-Text"] + WORKERS_AI_LIMITS["Text Generation"]) * s) / 60;
		const sustained = sustainedRate(spillJobs);
		return {
			n,
			interactive: options.interactive,
			timeScale: s,
			gapMs,
			idle: pct(idle),
			duringBackfill: { ...pct(busy), backfillSucceededMeanwhile: meanwhile },
			p95Ratio: round(percentile(busy, 95) / Math.max(1, percentile(idle, 95)), 2),
			twoKeys: {
				perSecondA: round(ra, 2),
				perSecondB: round(rb, 2),
				ratio: round(Math.max(ra, rb) / Math.max(0.001, Math.min(ra, rb)), 3),
				cap: "BATCH_KEY_WINDOW 200, MAX_JOBS_IN_FLIGHT 1000",
			},
			spillover: {
				sustainedPerSecond: round(sustained, 2),
				limitPerSecond: round(limitPerSecond, 1),
				fraction: round(sustained / limitPerSecond, 3),
				byModel: spilled.models,
				rateLimitedCalls: failedCalls(log).filter((c) => c.code === 3021).length,
				failed: spilled.counts.failed ?? 0,
			},
		};
	} finally {
		await stack.stop();
	}
}
