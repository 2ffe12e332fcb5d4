/**
 * `npm run bench`: the benchmark on a real local stack (wrangler dev, local D1/R2/
 * Queues, the model emulator). Runs the pipeline with the real consumer and the naive baseline,
 * the status API at growing table sizes, the memory scenario and the rate-limit scenario, then
 * prints Markdown tables and writes a JSON report to bench/results/ (git-ignored).
 *
 *   npm run bench                      N = 1000 (about 12 minutes on 2 cores)
 *   npm run bench -- --n 200           a smaller N
 *   npm run bench:quick                N = 60, small tables, short loads (a couple of minutes)
 *   npm run bench -- --only pipeline,status,memory,upload,rate,dashboard,backfill,export,cost,capacity
 *   npm run bench -- --only events      GET /v1/events: 1 and 100 streams, idle and busy (about 4 minutes)
 *   npm run bench -- --only capacity    D1 bytes per image before and after retention (N = 1000; quick: 50)
 *   npm run bench -- --only captions    a re-caption of 10,000 objects, half on the target model; GET /v1/captions
 *                                       and the captions export at 100,000 (quick: 200 and 2,000)
 *   npm run bench -- --only upload      what a 25 MiB upload adds to the status Worker (under a minute)
 *   npm run bench -- --only rate        the rate-limit scenarios alone (about 7 minutes; --rate-scale 2 halves the minute)
 *   npm run bench -- --only usage       a dry run's estimate against the usage its jobs report (N = 200; --usage-n)
 */
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { scriptArgs } from "../scripts/lib/args.ts";
import { meteredBundles, runBackfill, runExport, runUploadCost } from "./batches.ts";
import { runCapacity } from "./capacity.ts";
import { runCaptionsList, runRecaption } from "./captions.ts";
import { runDashboard } from "./dashboard.ts";
import { runEvents } from "./events.ts";
import { runLanes } from "./lanes.ts";
import { runMemory } from "./memory.ts";
import { runPipeline } from "./pipeline.ts";
import { runRateLimit } from "./rate-limit.ts";
import { machine, type PipelineRun, type Report, renderMarkdown, writeReport } from "./report.ts";
import { bundle, bundleWorkers, type ConsumerKind, ROOT, startStack, WORKER_CONFIGS } from "./stack.ts";
import { runStatusApi } from "./status-api.ts";
import { runUploadMemory } from "./upload-memory.ts";
import { runUsage } from "./usage.ts";
import { largeImages, pipelineImages } from "./workload.ts";

const UFORM = "@cf/unum/uform-gen2-qwen-500m";
const MISTRAL = "@cf/mistralai/mistral-small-3.1-24b-instruct";
const MOONDREAM = "@cf/moondream/moondream3.1-9B-A2B";

const { values: args } = scriptArgs("npm run bench", {
	options: {
		quick: { type: "boolean", default: false },
		n: { type: "string" },
		"naive-slow-n": { type: "string" },
		only: { type: "string" },
		"status-sizes": { type: "string" },
		"status-seconds": { type: "string" },
		"rate-n": { type: "string" },
		"rate-scale": { type: "string" },
		concurrency: { type: "string" },
		"backfill-n": { type: "string" },
		"export-sizes": { type: "string" },
		"cost-n": { type: "string" },
		"capacity-n": { type: "string" },
		"lanes-n": { type: "string" },
		"lanes-scale": { type: "string" },
		"events-n": { type: "string" },
		"usage-n": { type: "string" },
		"captions-n": { type: "string" },
		"captions-list-n": { type: "string" },
	},
});

const quick = args.quick === true;
const num = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number(value));
const n = num(args.n, quick ? 60 : 1000);
const options = {
	n,
	// The naive consumer captions one image per model latency: at 1 s, N = 1000 would take 17 minutes.
	naiveSlowN: Math.min(n, num(args["naive-slow-n"], quick ? 10 : 100)),
	latencies: [0, 1000],
	uploadConcurrency: num(args.concurrency, 16),
	statusSizes: (args["status-sizes"] ?? (quick ? "1000,10000" : "1000,10000,100000")).split(",").map(Number),
	statusSeconds: num(args["status-seconds"], quick ? 2 : 4),
	statusRounds: quick ? 1 : 3,
	// Quick mode stays within one window of the limit: it checks the pacing, not recovery from 3021.
	rateN: num(args["rate-n"], quick ? 300 : 1500),
	// Real time by default: on a loaded 2-core machine a shortened minute measures the machine's
	// throughput more than the pacing.
	rateScale: num(args["rate-scale"], 1),
	// The dashboard's first render: a page of jobs, opened in a fresh browser context each run.
	dashboardJobs: 25,
	dashboardRuns: quick ? 3 : 7,
	// Batches: a backfill of 10,000 objects, exports of 10,000 and 100,000 jobs, and the cost
	// per 1,000 images (batch backfill, uploads with the real consumer and with the naive one).
	backfillN: num(args["backfill-n"], quick ? 1000 : 10_000),
	exportSizes: (args["export-sizes"] ?? (quick ? "2000,10000" : "10000,100000")).split(",").map(Number),
	costN: num(args["cost-n"], quick ? 200 : 1000),
	// Streamed uploads: a 25 MiB upload, a few times.
	uploadBytes: 25 * 2 ** 20,
	uploadRuns: quick ? 2 : 5,
	// Capacity: N images captioned with a webhook subscription, D1 measured before and after retention.
	capacityN: num(args["capacity-n"], quick ? 50 : n),
	// Lanes: a backfill of this many objects (and two keys' of half as many each, and a spillover one)
	// with interactive jobs measured beside it; the minute shortened by --lanes-scale.
	lanesN: num(args["lanes-n"], quick ? 600 : 10_000),
	lanesScale: num(args["lanes-scale"], quick ? 2 : 1),
	// Events: images captioned while 1 and 100 streams follow them; how long streams sit idle.
	eventsN: num(args["events-n"], quick ? 50 : 200),
	eventsIdleSeconds: quick ? 30 : 60,
	// Usage: a dry run of this many objects, started, its estimate against its jobs' usage.
	usageN: num(args["usage-n"], quick ? 50 : 200),
	// Captions: a re-caption batch over this many objects (half already on the target model), and
	// GET /v1/captions and the captions export over this many current captions.
	captionsN: num(args["captions-n"], quick ? 200 : 10_000),
	captionsListN: num(args["captions-list-n"], quick ? 2000 : 100_000),
	sections: new Set(
		(
			args.only ??
			"pipeline,status,memory,upload,rate,dashboard,backfill,export,cost,capacity,captions,lanes,events,usage"
		).split(","),
	),
};

const workDir = path.join(ROOT, "bench", "results", "work");
/** Throughput and memory runs measure the consumer, not the platform's rate limits. */
const UNLIMITED = { MODEL_RATE_LIMITS: "off", EMULATOR_RATE_LIMITS: "off" };
const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);

const report: Report = {
	date: new Date().toISOString(),
	machine: machine(),
	options: { ...options, sections: [...options.sections] },
	pipeline: [],
	statusApi: null,
	memory: [],
	uploadMemory: [],
	rateLimit: [],
	lanes: null,
	dashboard: null,
	batches: { backfill: null, exports: [], costs: [] },
	capacity: null,
	captions: null,
	events: null,
	usage: null,
	notes: [
		"Local stack: wrangler dev (Miniflare) runs one queue batch at a time per consumer (max_concurrency is not emulated), so local throughput at 1 s model latency is bounded near max_batch_size per second.",
		"Pipeline and memory runs use MODEL_RATE_LIMITS=off (no pacing) and an emulator without rate limits; the rate-limit scenarios measure pacing separately.",
	],
};

async function pipelineSection(bundles: Awaited<ReturnType<typeof bundleWorkers>>) {
	const images = await pipelineImages();
	for (const latencyMs of options.latencies) {
		for (const consumer of ["real", "naive"] as ConsumerKind[]) {
			const count = consumer === "naive" && latencyMs > 0 ? options.naiveSlowN : options.n;
			log(`pipeline: ${consumer} consumer, ${latencyMs} ms model latency, N = ${count}`);
			const stack = await startStack({
				consumer,
				bundles,
				workDir: path.join(workDir, `pipeline-${consumer}-${latencyMs}`),
				vars: { EMULATOR_LATENCY_MS: String(latencyMs), ...UNLIMITED },
			});
			try {
				// Bounded: the slowest case is the naive consumer, one latency per image, plus slack.
				const timeoutMs = 120_000 + count * (latencyMs + 200) * (consumer === "naive" ? 1.5 : 0.5);
				const { summary } = await runPipeline(stack, {
					prefix: `bench/${consumer}-${latencyMs}/`,
					images,
					n: count,
					concurrency: options.uploadConcurrency,
					timeoutMs,
					latencyMs,
				});
				log(
					`  ${summary.imagesPerSecond} images/s, batch p50 ${summary.batches.p50Ms} ms, failed ${summary.failed}, not terminal ${summary.notTerminal}`,
				);
				report.pipeline.push({ consumer, latencyMs, result: summary } satisfies PipelineRun);
			} finally {
				await stack.stop();
			}
		}
	}
}

async function batchesSection(bundles: Awaited<ReturnType<typeof bundleWorkers>>) {
	const wants = (name: string) => options.sections.has(name);
	if (!wants("backfill") && !wants("export") && !wants("cost") && !wants("writeback")) return;
	if (wants("export")) {
		log(`export: batches of ${options.exportSizes.join(" and ")} jobs`);
		report.batches.exports = await runExport({
			bundles,
			workDir: path.join(workDir, "export"),
			sizes: options.exportSizes,
			log,
		});
	}
	if (!wants("backfill") && !wants("cost") && !wants("writeback")) return;
	log("bundling the metered entry points (bench/metered/)");
	const metered = await meteredBundles(workDir);
	if (wants("backfill")) {
		log(`backfill: ${options.backfillN} objects, 0 ms model`);
		const backfill = await runBackfill({
			bundles: metered,
			workDir: path.join(workDir, "backfill"),
			n: options.backfillN,
			log,
		});
		log(`  ${backfill.listedPerSecond} objects listed/s, completed after ${backfill.secondsToCompleted} s`);
		report.batches.backfill = backfill;
		report.batches.costs.push({ pipeline: "batch backfill (status, lister, consumer, webhooks)", cost: backfill.cost });
	}
	if (wants("writeback")) {
		log(`writeback: a batch of ${options.backfillN} objects, tags written back as sidecars`);
		const run = await runBackfill({
			bundles: metered,
			workDir: path.join(workDir, "writeback"),
			n: options.backfillN,
			log,
			writeBack: true,
		});
		log(`  ${run.jobsMade} jobs, ${run.echoesIgnored} echoes ignored, completed after ${run.secondsToCompleted} s`);
		report.batches.writeBack = run;
		report.batches.costs.push({ pipeline: "batch with sidecar write-back (echoes included)", cost: run.cost });
	}
	if (wants("cost")) {
		for (const consumer of ["real", "naive"] as const) {
			log(`cost: ${options.costN} uploads, ${consumer} consumer`);
			const cost = await runUploadCost({
				bundles: metered,
				consumer,
				workDir: path.join(workDir, `cost-${consumer}`),
				n: options.costN,
			});
			const label = consumer === "real" ? "uploads: workers/consumer (+ webhooks)" : "uploads: naive baseline consumer";
			report.batches.costs.push({ pipeline: label, cost });
		}
		log(`cost: ${options.costN} uploads, real consumer paced at the platform's rate limits`);
		const paced = await runUploadCost({
			bundles: metered,
			consumer: "real",
			workDir: path.join(workDir, "cost-paced"),
			n: options.costN,
			paced: true,
		});
		report.batches.costs.push({ pipeline: "uploads: workers/consumer, paced (platform limits)", cost: paced });
	}
}

async function captionsSection(bundles: Awaited<ReturnType<typeof bundleWorkers>>) {
	log("bundling the metered entry points (bench/metered/)");
	const metered = await meteredBundles(path.join(workDir, "captions"));
	report.captions = { recaption: null, list: null };
	// Either part is skipped with a size of 0.
	if (options.captionsN > 0) {
		log(`captions: a re-caption batch over ${options.captionsN} objects, half on the target model`);
		const recaption = await runRecaption({
			bundles: metered,
			workDir: path.join(workDir, "captions", "recaption"),
			n: options.captionsN,
			log,
		});
		log(
			`  ${recaption.jobsMade} jobs made for ${recaption.onOther} objects on the other model, ${recaption.listedPerSecond} objects listed/s, ${recaption.listingPerObject.rowsWritten} D1 rows written per object listing, ${recaption.wholePerObject.rowsWritten} in all`,
		);
		report.captions.recaption = recaption;
	}
	if (options.captionsListN === 0) return;
	log(`captions: GET /v1/captions and the captions export over ${options.captionsListN} captions`);
	report.captions.list = await runCaptionsList({
		bundles: metered,
		plainBundles: bundles,
		workDir: path.join(workDir, "captions", "list"),
		n: options.captionsListN,
		log,
	});
}

async function main() {
	log(`options ${JSON.stringify(report.options)}; ${os.cpus().length} CPUs`);
	await rm(workDir, { recursive: true, force: true });
	log("bundling the Workers (the measured code is fixed for the whole run)");
	const bundles = await bundleWorkers(workDir);

	if (options.sections.has("pipeline")) await pipelineSection(bundles);
	if (options.sections.has("status")) {
		report.statusApi = await runStatusApi({
			workDir: path.join(workDir, "status"),
			bundles,
			consumer: "real",
			sizes: options.statusSizes,
			seconds: options.statusSeconds,
			rounds: options.statusRounds,
			log,
		});
	}
	if (options.sections.has("memory")) {
		log("memory: 6000×4000 JPEG and 20 MB PNG");
		const images = await largeImages(path.join(ROOT, "bench", "results", "images"));
		const stack = await startStack({
			consumer: "real",
			bundles,
			workDir: path.join(workDir, "memory"),
			vars: UNLIMITED,
		});
		try {
			report.memory = await runMemory(stack, images, 120_000);
		} finally {
			await stack.stop();
		}
	}
	if (options.sections.has("upload")) {
		log(`upload: ${options.uploadRuns} uploads of ${options.uploadBytes / 2 ** 20} MiB, status Worker and control`);
		const control = await bundle(
			WORKER_CONFIGS.status,
			path.join(workDir, "bundles", "upload-control"),
			"bench/upload-control/index.ts",
		);
		for (const [worker, status] of [
			["status", bundles.status],
			["control", control],
		] as const) {
			// Production mode: no notification is enqueued, so the consumer stays idle while measuring.
			const stack = await startStack({
				consumer: "real",
				bundles: { ...bundles, status },
				workDir: path.join(workDir, `upload-${worker}`),
				vars: { DEPLOY_MODE: "production" },
			});
			try {
				const runs = await runUploadMemory(stack, { bytes: options.uploadBytes, runs: options.uploadRuns, worker });
				for (const r of runs) log(`  ${worker}: ${r.status} in ${r.seconds} s, +${r.workerdPeakAboveStartMb} MB`);
				report.uploadMemory.push(...runs);
			} finally {
				await stack.stop();
			}
		}
	}
	if (options.sections.has("rate")) {
		const images = await pipelineImages();
		const scenarios = [
			{
				label: "retired uform-gen2 first, falls back to mistral-small-3.1 (Text Generation), paced",
				chain: [UFORM, MISTRAL],
				task: "Text Generation",
				retired: UFORM,
				paced: true,
			},
			{ label: "moondream3.1 (Image-to-Text), paced", chain: [MOONDREAM], task: "Image-to-Text", paced: true },
			{
				label: "moondream3.1 (Image-to-Text), unpaced (before: retry 3021 only)",
				chain: [MOONDREAM],
				task: "Image-to-Text",
				paced: false,
			},
		] as const;
		for (const [i, scenario] of scenarios.entries()) {
			if (quick && !scenario.paced) continue;
			// The same wall time per scenario: the Text Generation limit is 300/min, Image-to-Text 720/min.
			const n = scenario.task === "Text Generation" ? Math.round((options.rateN * 300) / 720) : options.rateN;
			log(`rate limit: ${scenario.label}, N = ${n}, time scale ${options.rateScale}`);
			const result = await runRateLimit({
				...scenario,
				chain: [...scenario.chain],
				stack: { bundles, workDir: path.join(workDir, `rate-${i}`) },
				images,
				n,
				timeScale: options.rateScale,
				timeoutMs: 900_000,
			});
			const retired = result.retired ? `, ${result.retired.callsLogged} calls to the retired model` : "";
			log(
				`  ${(result.fractionOfLimit * 100).toFixed(1)} % of the ${result.task} limit, ${result.failed} failed, ${result.rateLimitedCalls} × 3021${retired}`,
			);
			report.rateLimit.push(result);
		}
	}

	if (options.sections.has("lanes")) {
		log(`lanes: N = ${options.lanesN}, time scale ${options.lanesScale}`);
		const result = await runLanes({
			bundles,
			workDir: path.join(workDir, "lanes"),
			n: options.lanesN,
			interactive: 60,
			timeScale: options.lanesScale,
			log,
		});
		log(
			`  interactive p95 ${result.duringBackfill.p95Ms} ms during the backfill against ${result.idle.p95Ms} ms idle (${result.p95Ratio}×); two keys ${result.twoKeys.ratio}; spillover ${(result.spillover.fraction * 100).toFixed(1)} %, ${result.spillover.rateLimitedCalls} × 3021`,
		);
		report.lanes = result;
	}

	if (options.sections.has("dashboard")) {
		log(`dashboard: first render with ${options.dashboardJobs} jobs, ${options.dashboardRuns} runs`);
		const stack = await startStack({ consumer: "real", bundles, workDir: path.join(workDir, "dashboard") });
		try {
			report.dashboard = await runDashboard(stack, await pipelineImages(), {
				jobs: options.dashboardJobs,
				runs: options.dashboardRuns,
				log,
			});
		} finally {
			await stack.stop();
		}
	}
	await batchesSection(bundles);
	if (options.sections.has("capacity")) {
		report.capacity = await runCapacity({
			bundles,
			webhooksBundle: await bundle(WORKER_CONFIGS.webhooks, path.join(workDir, "bundles", "webhooks")),
			workDir: path.join(workDir, "capacity"),
			images: await pipelineImages(),
			n: options.capacityN,
			log,
		});
		const c = report.capacity;
		log(
			`  ${c.d1_bytes_per_image} bytes per image retained, ${c.steady_bytes_per_object} per object after retention besides its caption, ${c.images_per_10gb} objects per 10 GB`,
		);
	}

	if (options.sections.has("captions")) await captionsSection(bundles);

	if (options.sections.has("events")) {
		const stack = await startStack({
			consumer: "real",
			bundles,
			workDir: path.join(workDir, "events"),
			vars: { EMULATOR_LATENCY_MS: "0", ...UNLIMITED },
		});
		try {
			report.events = await runEvents(stack, {
				images: await pipelineImages(),
				n: options.eventsN,
				idleSeconds: options.eventsIdleSeconds,
				log,
			});
		} finally {
			await stack.stop();
		}
	}
	if (options.sections.has("usage")) {
		log(`usage: a dry run of ${options.usageN} objects, started, its estimate against its jobs' usage`);
		report.usage = await runUsage({ bundles, workDir: path.join(workDir, "usage"), n: options.usageN, log });
		const { estimate, actual } = report.usage;
		log(`  estimate ${estimate.modelCalls} calls $${estimate.usd}; ${actual.jobs} jobs, usage priced $${actual.usd}`);
	}

	const files = await writeReport(report, path.join(ROOT, "bench", "results"));
	console.log(`\n${renderMarkdown(report)}`);
	log(`report: ${path.relative(ROOT, files.json)} and ${path.relative(ROOT, files.markdown)}`);
}

await main();
