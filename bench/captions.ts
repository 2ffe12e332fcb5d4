/**
 * The captions scenario of `npm run bench` (`--only captions`), on the local stack with every
 * Worker metered (bench/metered/: each D1 result's `meta.rows_read` / `rows_written`, which local
 * D1 reports as D1 does):
 *
 * - re-caption: N objects put straight into the bucket, half captioned by a batch with the target
 *   model as the whole chain and half by a batch with another model; then one
 *   `POST /v1/batches { prefix, recaption: { unless_model: [target] } }` over all of them: jobs made
 *   (exactly the other half, or the run fails), objects listed per second, and D1 rows written and
 *   read per object, for the listing alone and for the whole batch (listing, captions, events);
 * - captions at scale: M current captions (one version each) written straight into the local D1
 *   database file before the stack starts (no object, no job: what stays once retention has
 *   removed the jobs), then every page of `GET /v1/captions?limit=100`, pages of the default limit,
 *   a page of a narrow prefix (D1 rows read and time per page), and the captions export in each
 *   format: D1 queries and rows read for the whole download (metered), then time, bytes and
 *   workerd's peak memory above its level at the start on the same state with the Workers' own
 *   bundles (not metered).
 */
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ok } from "../client/index.ts";
import {
	type BatchJson,
	BENCH_VARS,
	type Bundles,
	type Cost,
	cost,
	type ExportResult,
	logOffset,
	type MeterLine,
	measureDownload,
	meterLines,
	runBatch,
	seedObjects,
	settleLog,
} from "./batches.ts";
import { databaseFile } from "./capacity.ts";
import { api } from "./pipeline.ts";
import { migratedState, type Stack, startStack } from "./stack.ts";
import { percentile, round } from "./stats.ts";

/** The model the bucket moves to, and the one half of it was captioned with before. */
export const TARGET_MODEL = "@cf/moondream/moondream3.1-9B-A2B";
export const OTHER_MODEL = "@cf/llava-hf/llava-1.5-7b-hf";
const BUCKET = "images";
const PROMPT = "Generate a caption for this image";

export interface ScenarioOptions {
	bundles: Bundles & { webhooks: string };
	workDir: string;
	n: number;
	log: (line: string) => void;
}

type Meter = { invocations: number; d1Queries: number; rowsRead: number; rowsWritten: number };

export interface RecaptionResult {
	n: number;
	onTarget: number;
	onOther: number;
	/** Jobs the re-caption batch made (counts.total − skipped − missing); must equal onOther. */
	jobsMade: number;
	skipped: number;
	counts: Record<string, number>;
	listingSeconds: number;
	listedPerSecond: number;
	secondsToCompleted: number;
	/** The batch's listing pages (the lister's `batch-listing` invocations) per object listed. */
	listingPerObject: Meter;
	/** Everything the batch made happen (creation, listing, captions, events) per object listed. */
	wholePerObject: Meter;
	/** The same per job made. */
	wholePerJob: Meter;
	cost: Cost;
}

export interface CaptionPagesResult {
	prefix: string;
	limit: number;
	pages: number;
	captionsListed: number;
	rowsReadPerPage: { min: number; p50: number; max: number };
	d1QueriesPerPage: number;
	msPerPage: { p50: number; p95: number };
}

export interface CaptionExportResult extends ExportResult {
	d1Queries: number;
	rowsRead: number;
}

export interface CaptionsListResult {
	captions: number;
	pages: CaptionPagesResult[];
	exports: CaptionExportResult[];
}

export interface CaptionsReport {
	recaption: RecaptionResult | null;
	list: CaptionsListResult | null;
}

function sumMeter(lines: MeterLine[], per: number): Meter {
	const sum = (f: (l: MeterLine) => number) => round(lines.reduce((a, l) => a + f(l), 0) / per, 2);
	return {
		invocations: sum(() => 1),
		d1Queries: sum((l) => l.d1Queries),
		rowsRead: sum((l) => l.rowsRead),
		rowsWritten: sum((l) => l.rowsWritten),
	};
}

/** A batch that must end with every job succeeded (the seeding's batches). */
async function captionPrefix(stack: Stack, prefix: string, n: number, deadline: number): Promise<void> {
	const batch = await runBatch(stack, { prefix }, deadline);
	if (batch.counts.succeeded !== n) throw new Error(`seeding ${prefix}: ${JSON.stringify(batch.counts)}`);
}

export async function runRecaption(options: ScenarioOptions): Promise<RecaptionResult> {
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	const onOther = Math.floor(options.n / 2);
	const onTarget = options.n - onOther;
	// Two folders, so each half is one prefix batch; the re-caption batch lists both.
	const prefix = "recaption/";
	options.log(`  seeding ${options.n} objects straight into the bucket`);
	await seedObjects(persistTo, `${prefix}on-target/`, onTarget);
	await seedObjects(persistTo, `${prefix}on-other/`, onOther);
	const deadline = Date.now() + 60 * 60_000;
	const start = (model: string) =>
		startStack({
			consumer: "real",
			bundles: options.bundles,
			webhooksBundle: options.bundles.webhooks,
			persistTo,
			workDir: options.workDir,
			vars: { ...BENCH_VARS, MODEL_CHAIN: model },
		});

	options.log(`  captioning ${onOther} objects with ${OTHER_MODEL}`);
	const other = await start(OTHER_MODEL);
	try {
		await captionPrefix(other, `${prefix}on-other/`, onOther, deadline);
	} finally {
		await other.stop();
	}
	const stack = await start(TARGET_MODEL);
	try {
		options.log(`  captioning ${onTarget} objects with ${TARGET_MODEL}`);
		await captionPrefix(stack, `${prefix}on-target/`, onTarget, deadline);
		await settleLog(stack.logPath);

		options.log(`  re-caption batch over ${options.n} objects, unless_model ${TARGET_MODEL}`);
		const from = await logOffset(stack.logPath);
		const batch: BatchJson = await runBatch(stack, { prefix, recaption: { unless_model: [TARGET_MODEL] } }, deadline);
		await settleLog(stack.logPath);
		const counts = batch.counts;
		const skipped = counts.skipped ?? 0;
		const jobsMade = (counts.total ?? 0) - skipped - (counts.missing ?? 0);
		if (jobsMade !== onOther || counts.succeeded !== onOther) {
			throw new Error(`the re-caption batch made ${jobsMade} jobs, not ${onOther}: ${JSON.stringify(counts)}`);
		}
		const createdAt = Date.parse(batch.created_at);
		const listingSeconds = (Date.parse(batch.listed_at ?? "") - createdAt) / 1000;
		const lines = (await meterLines(stack.logPath, from)).filter((l) => !l.invocation.startsWith("fetch GET"));
		return {
			n: options.n,
			onTarget,
			onOther,
			jobsMade,
			skipped,
			counts,
			listingSeconds: round(listingSeconds, 2),
			listedPerSecond: round((counts.total ?? 0) / listingSeconds, 1),
			secondsToCompleted: round((Date.parse(batch.completed_at ?? "") - createdAt) / 1000, 2),
			listingPerObject: sumMeter(
				lines.filter((l) => l.invocation === "queue batch-listing"),
				options.n,
			),
			wholePerObject: sumMeter(lines, options.n),
			wholePerJob: sumMeter(lines, jobsMade),
			cost: cost(lines, options.n),
		};
	} finally {
		await stack.stop();
	}
}

/**
 * `n` objects' current captions (one AI version each, on the target model) written straight into
 * the stopped stack's D1 file, under `prefix` in 100 folders `p00/` … `p99/`.
 */
function seedCaptions(file: string, prefix: string, n: number): void {
	const db = new DatabaseSync(file);
	try {
		const now = Date.now();
		const caption = db.prepare(
			"INSERT INTO captions (bucket, key, current, versions, updated_at) VALUES (?, ?, 1, 1, ?)",
		);
		const version = db.prepare(
			`INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
			VALUES (?, ?, 1, ?, 'ai', ?, ?, ?, ?, ?)`,
		);
		db.exec("BEGIN");
		for (let i = 0; i < n; i++) {
			const key = `${prefix}p${String(i % 100).padStart(2, "0")}/${String(i).padStart(7, "0")}.jpg`;
			// A caption the size of a real one, with the characters CSV has to quote.
			const text = `A "seeded" caption, number ${i}, of a photo: sky, hills and a lake at dusk.`;
			caption.run(BUCKET, key, now);
			// The job that made it is gone (retention): its id stays on the version.
			version.run(BUCKET, key, text, `job_SEEDED${String(i).padStart(20, "0")}`, TARGET_MODEL, PROMPT, `etag${i}`, now);
		}
		db.exec("COMMIT");
	} finally {
		db.close();
	}
}

/** Walks `pages` pages (or all) of `GET /v1/captions`, timing each; rows read from the meter lines. */
async function walkPages(stack: Stack, prefix: string, limit: number, pages: number): Promise<CaptionPagesResult> {
	const from = await logOffset(stack.logPath);
	const client = api(stack);
	const ms: number[] = [];
	let cursor: string | undefined;
	let listed = 0;
	for (let page = 0; page < pages; page++) {
		const started = performance.now();
		const body = await ok(client.GET("/v1/captions", { params: { query: { prefix, limit, cursor } } }));
		ms.push(performance.now() - started);
		listed += body.data.length;
		if (body.next_cursor === null) break;
		cursor = body.next_cursor;
	}
	await settleLog(stack.logPath, 1000);
	const lines = (await meterLines(stack.logPath, from)).filter((l) => l.invocation === "fetch GET /v1/captions");
	if (lines.length !== ms.length) throw new Error(`${lines.length} meter lines for ${ms.length} pages`);
	const rows = lines.map((l) => l.rowsRead);
	return {
		prefix,
		limit,
		pages: ms.length,
		captionsListed: listed,
		rowsReadPerPage: { min: Math.min(...rows), p50: percentile(rows, 50), max: Math.max(...rows) },
		d1QueriesPerPage: round(lines.reduce((a, l) => a + l.d1Queries, 0) / lines.length, 2),
		msPerPage: { p50: percentile(ms, 50), p95: percentile(ms, 95) },
	};
}

/** The captions export of `prefix` in `format`. */
const exportUrl = (prefix: string, format: string) =>
	`/v1/exports/captions?prefix=${encodeURIComponent(prefix)}&format=${format}`;

const FORMATS = ["jsonl", "csv", "hf"];

export async function runCaptionsList(
	options: ScenarioOptions & { plainBundles: Bundles },
): Promise<CaptionsListResult> {
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	const prefix = "captions/";
	options.log(`  writing ${options.n} current captions into the local D1 file`);
	seedCaptions(await databaseFile(persistTo), prefix, options.n);
	const start = (bundles: Bundles) =>
		startStack({ consumer: "real", bundles, persistTo, workDir: options.workDir, vars: BENCH_VARS });
	const metered = await start(options.bundles);
	const reads = new Map<string, MeterLine | undefined>();
	let pages: CaptionPagesResult[];
	try {
		pages = [
			await walkPages(metered, prefix, 100, Number.POSITIVE_INFINITY),
			await walkPages(metered, prefix, 20, 200),
			await walkPages(metered, `${prefix}p42/`, 100, 5),
		];
		for (const p of pages) {
			options.log(
				`  GET /v1/captions?prefix=${p.prefix}&limit=${p.limit}: ${p.pages} pages, rows read ${p.rowsReadPerPage.min}-${p.rowsReadPerPage.max} a page, p50 ${p.msPerPage.p50} ms`,
			);
		}
		// The export's D1 queries and rows read, metered (its line is logged when the body ends).
		for (const format of FORMATS) {
			const from = await logOffset(metered.logPath);
			await measureDownload(metered, exportUrl(prefix, format), options.n, format);
			await settleLog(metered.logPath, 1000);
			const lines = await meterLines(metered.logPath, from);
			reads.set(
				format,
				lines.find((l) => l.invocation === "fetch GET /v1/exports/captions"),
			);
		}
	} finally {
		await metered.stop();
	}
	// Time and memory from the Workers as deployed (the metered wrapper's proxies and stream left out).
	const plain = await start(options.plainBundles);
	try {
		const exports: CaptionExportResult[] = [];
		for (const format of FORMATS) {
			const result = await measureDownload(plain, exportUrl(prefix, format), options.n, format);
			const line = reads.get(format);
			exports.push({ ...result, d1Queries: line?.d1Queries ?? 0, rowsRead: line?.rowsRead ?? 0 });
			options.log(
				`  export ${format}: ${result.seconds} s, ${result.megabytes} MB, +${result.workerdPeakAboveStartMb} MB, ${line?.d1Queries} queries, ${line?.rowsRead} rows read`,
			);
		}
		return { captions: options.n, pages, exports };
	} finally {
		await plain.stop();
	}
}
