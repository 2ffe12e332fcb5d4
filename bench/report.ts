/**
 * The benchmark report: Markdown tables (printed, and pasted into the README's Performance
 * section) and the JSON file with every figure and the machine it was measured on.
 */
import { execFileSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type BatchesReport, batchesMarkdown } from "./batches-report.ts";
import { type CapacityResult, capacityMarkdown } from "./capacity.ts";
import type { CaptionsReport } from "./captions.ts";
import { captionsMarkdown } from "./captions-report.ts";
import type { DashboardResult } from "./dashboard.ts";
import { type EventsResult, eventsMarkdown } from "./events.ts";
import type { LanesResult } from "./lanes.ts";
import type { MemoryResult } from "./memory.ts";
import type { PipelineResult } from "./pipeline.ts";
import type { RateLimitResult } from "./rate-limit.ts";
import { header, row } from "./stats.ts";
import type { SizeResult } from "./status-api.ts";
import { type UploadMemoryResult, uploadMemoryMarkdown } from "./upload-memory.ts";
import { type UsageResult, usageMarkdown } from "./usage.ts";

export interface PipelineRun {
	consumer: "real" | "naive";
	latencyMs: number;
	result: PipelineResult;
}

function lanesTable(l: LanesResult): string[] {
	return [
		...header(["measure", "N", "time scale", "value", "goal"]),
		row([
			"interactive time-to-caption idle, p50 / p95",
			l.interactive / 2,
			l.timeScale,
			`${l.idle.p50Ms} / ${l.idle.p95Ms} ms`,
			"",
		]),
		row([
			"same during a backfill at the limit, p50 / p95",
			`${l.interactive / 2} (backfill ${l.n})`,
			l.timeScale,
			`${l.duringBackfill.p50Ms} / ${l.duringBackfill.p95Ms} ms (${l.p95Ratio}× idle p95)`,
			"p95 ≤ 2× idle",
		]),
		row([
			"two keys' backfills, captions/s each and ratio",
			`${Math.floor(l.n / 2)} each`,
			l.timeScale,
			`${l.twoKeys.perSecondA} / ${l.twoKeys.perSecondB} (${l.twoKeys.ratio})`,
			"within 10 %",
		]),
		row([
			"spillover backfill, sustained of 1,020/min",
			l.n,
			l.timeScale,
			`${l.spillover.sustainedPerSecond}/s of ${l.spillover.limitPerSecond}/s (${(l.spillover.fraction * 100).toFixed(1)} %), ${l.spillover.rateLimitedCalls} × 3021, ${l.spillover.failed} failed`,
			"≥ 95 %, 0 × 3021",
		]),
	];
}

export interface Report {
	date: string;
	machine: Record<string, string | number>;
	options: Record<string, unknown>;
	pipeline: PipelineRun[];
	statusApi: { sizes: SizeResult[]; plans: Record<string, string> } | null;
	memory: MemoryResult[];
	uploadMemory: UploadMemoryResult[];
	rateLimit: RateLimitResult[];
	lanes: LanesResult | null;
	dashboard: DashboardResult | null;
	batches: BatchesReport;
	capacity: CapacityResult | null;
	captions: CaptionsReport | null;
	events: EventsResult | null;
	usage: UsageResult | null;
	notes: string[];
}

export function machine(): Record<string, string | number> {
	const run = (cmd: string, args: string[]) => {
		try {
			return execFileSync(cmd, args, { encoding: "utf8" }).trim();
		} catch {
			return "unavailable";
		}
	};
	return {
		cpus: run("nproc", []),
		cpuModel: os.cpus()[0]?.model ?? "unknown",
		memory: run("free", ["-h"]).split("\n")[1]?.replace(/\s+/g, " ") ?? "",
		os: `${os.type()} ${os.release()}`,
		node: process.version,
		loadAverageAtStart: os
			.loadavg()
			.map((l) => l.toFixed(2))
			.join(" "),
	};
}

function pipelineTable(runs: PipelineRun[]): string[] {
	const lines = header([
		"consumer",
		"model latency",
		"N",
		"images/s",
		"wall ms/image",
		"batch of 10 (p50)",
		"overhead ms/image",
		"jobs in flight",
		"failed",
	]);
	for (const { consumer, latencyMs, result: r } of runs) {
		lines.push(
			row([
				consumer === "real" ? "workers/consumer" : "naive baseline",
				`${latencyMs} ms`,
				r.n,
				r.imagesPerSecond,
				r.msPerImage,
				`${r.batches.p50Ms} ms`,
				r.overheadMsPerImage,
				r.maxJobsInFlight,
				r.failed + r.notTerminal,
			]),
		);
	}
	for (const latencyMs of new Set(runs.map((r) => r.latencyMs))) {
		const real = runs.find((r) => r.consumer === "real" && r.latencyMs === latencyMs)?.result;
		const naive = runs.find((r) => r.consumer === "naive" && r.latencyMs === latencyMs)?.result;
		if (real && naive && naive.imagesPerSecond > 0) {
			lines.push(
				row([
					"**ratio**",
					`${latencyMs} ms`,
					"",
					`**${(real.imagesPerSecond / naive.imagesPerSecond).toFixed(1)}×**`,
					"",
					`${(naive.batches.p50Ms / Math.max(1, real.batches.p50Ms)).toFixed(1)}× shorter`,
					`${(naive.overheadMsPerImage / Math.max(0.1, real.overheadMsPerImage)).toFixed(1)}× less`,
					"",
					"",
				]),
			);
		}
	}
	return lines;
}

function statusTable(sizes: SizeResult[]): string[] {
	const endpoints = sizes[0]?.endpoints.map((e) => e.endpoint) ?? [];
	const lines = header(["endpoint", ...sizes.map((s) => `${s.rows.toLocaleString("en")} jobs: req/s, p50 / p99`)]);
	for (const endpoint of endpoints) {
		lines.push(
			row([
				`\`${endpoint}\``,
				...sizes.map((s) => {
					const e = s.endpoints.find((x) => x.endpoint === endpoint);
					return e
						? `${e.requestsPerSecond}, ${e.p50Ms} / ${e.p99Ms} ms${e.errors + e.non2xx ? ` (${e.errors + e.non2xx} errors)` : ""}`
						: "";
				}),
			]),
		);
	}
	return lines;
}

function memoryTable(results: MemoryResult[]): string[] {
	const lines = header([
		"image",
		"bytes",
		"job",
		"workerd RSS at start",
		"workerd peak above start",
		"Images emulation (sharp) peak above start",
		"seconds",
	]);
	for (const m of results) {
		lines.push(
			row([
				m.image,
				`${(m.bytes / 1e6).toFixed(1)} MB`,
				m.status === "succeeded" ? "succeeded" : `${m.status}: ${m.error ?? ""}`,
				`${m.workerd.atResetMb} MB`,
				`**${m.workerd.peakAboveResetMb} MB**`,
				`${m.imagesEmulation.peakAboveResetMb} MB`,
				m.seconds,
			]),
		);
	}
	return lines;
}

function rateTable(results: RateLimitResult[]): string[] {
	const lines = header([
		"run",
		"N",
		"limit (scaled)",
		"consumer pacing",
		"sustained",
		"of the limit",
		"whole run",
		"failed",
		"3021 answers",
		"retried jobs",
		"calls to the retired model",
	]);
	for (const r of results) {
		const perMinute = Math.round((r.limitPerSecond * 60) / r.timeScale);
		lines.push(
			row([
				r.label,
				r.n,
				`${r.limitPerSecond}/s (${r.task} ${perMinute}/min × ${r.timeScale})`,
				r.pacing === "off" ? "off" : `\`${r.pacing}\``,
				`${r.sustainedPerSecond}/s`,
				`**${(r.fractionOfLimit * 100).toFixed(1)} %**`,
				`${r.overallPerSecond}/s`,
				r.failed + r.notTerminal,
				r.rateLimitedCalls,
				r.retriedJobs,
				r.retired ? `${r.retired.callsLogged} (GET /v1/models: ${r.retired.callsReported ?? "n/a"})` : "—",
			]),
		);
	}
	return lines;
}

function dashboardTable(d: DashboardResult): string[] {
	const row = (label: string, r: DashboardResult["cold"]) =>
		`| ${label} | ${r.signInPaintMs} | ${r.jobsRowsMs} | ${r.jobsThumbnailsMs} |`;
	return [
		`${d.runs} runs, ${d.jobs} jobs on the page; ms from the start of navigation (cold: a fresh browser context).`,
		"",
		"| | sign-in form painted | jobs listed | thumbnails shown |",
		"| --- | --- | --- | --- |",
		row("cold (median)", d.cold),
		row("cold (worst)", d.coldMax),
		row("warm (median)", d.warm),
	];
}

export function renderMarkdown(report: Report): string {
	const out: string[] = [];
	if (report.pipeline.length)
		out.push("#### Pipeline: upload → stored caption", "", ...pipelineTable(report.pipeline), "");
	if (report.statusApi) {
		out.push("#### Status API (autocannon, 8 connections)", "", ...statusTable(report.statusApi.sizes), "");
	}
	if (report.memory.length)
		out.push("#### Memory while captioning large images", "", ...memoryTable(report.memory), "");
	out.push(...uploadMemoryMarkdown(report.uploadMemory));
	if (report.lanes) out.push("#### Lanes (emulated limits)", "", ...lanesTable(report.lanes), "");
	if (report.rateLimit.length)
		out.push("#### Rate limits per task type (emulated)", "", ...rateTable(report.rateLimit), "");
	if (report.dashboard) out.push("#### Dashboard: first render", "", ...dashboardTable(report.dashboard), "");
	out.push(...batchesMarkdown(report.batches));
	out.push(...capacityMarkdown(report.capacity));
	out.push(...captionsMarkdown(report.captions));
	out.push(...eventsMarkdown(report.events));
	out.push(...usageMarkdown(report.usage));
	return out.join("\n");
}

export async function writeReport(report: Report, dir: string): Promise<{ json: string; markdown: string }> {
	await mkdir(dir, { recursive: true });
	const stamp = report.date.replace(/[:.]/g, "-");
	const json = path.join(dir, `bench-${stamp}.json`);
	const markdown = path.join(dir, `bench-${stamp}.md`);
	await writeFile(json, `${JSON.stringify(report, null, "\t")}\n`);
	await writeFile(markdown, `${renderMarkdown(report)}\n`);
	await writeFile(path.join(dir, "latest.json"), `${JSON.stringify(report, null, "\t")}\n`);
	return { json, markdown };
}
