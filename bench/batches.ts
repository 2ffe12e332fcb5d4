/**
 * The batch scenarios of `npm run bench`, on the local stack:
 *
 * - backfill: N objects put straight into the bucket (no notification, no job), then one prefix
 *   batch over them with a 0 ms model: objects listed and enqueued per second, time to `completed`;
 * - export: a batch of 10,000 and one of 100,000 succeeded jobs seeded into D1, each exported in
 *   every format: rows per second and the workerd process's peak memory above its level at the
 *   start of the download (every local isolate shares that process: an upper bound on what the
 *   status Worker needed);
 * - cost per 1,000 images without the model: every Worker runs from a metered entry point
 *   (bench/metered/) that logs, per invocation, D1 queries with the rows read and written (result
 *   `meta`), queue messages sent, received and retried, R2 calls by method. Measured for the backfill, for uploads
 *   through `PUT /v1/images` with the real consumer, and for the same uploads with the naive
 *   baseline consumer.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { getPlatformProxy } from "wrangler";
import { z } from "zod";
import { ok, uploadImage } from "../client/index.ts";
import { newJobId } from "../shared/ids.ts";
import { resetPeak, statusField } from "./memory.ts";
import { STAGES } from "./metered/stages.ts";
import { api, logLineCount, waitUntilTerminal } from "./pipeline.ts";
import { bundle, migratedState, type Stack, startStack, WORKER_CONFIGS, wrangler } from "./stack.ts";
import { round } from "./stats.ts";

export type Bundles = Record<"status" | "real" | "naive", string>;

/** Metered bundles of every Worker (bench/metered/). */
export async function meteredBundles(workDir: string): Promise<Bundles & { webhooks: string }> {
	const dir = (name: string) => path.join(workDir, "bundles", `metered-${name}`);
	return {
		status: await bundle(WORKER_CONFIGS.status, dir("status"), "bench/metered/status.ts"),
		real: await bundle(WORKER_CONFIGS.consumer, dir("consumer"), "bench/metered/consumer.ts"),
		naive: await bundle(WORKER_CONFIGS.naive, dir("naive"), "bench/metered/naive.ts"),
		webhooks: await bundle(WORKER_CONFIGS.webhooks, dir("webhooks"), "bench/metered/webhooks.ts"),
	};
}

/** A 64×48 JPEG: the backfill measures listing and the pipeline's own work, not image decoding. */
const tinyJpeg = () =>
	sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 90, g: 140, b: 200 } } })
		.jpeg({ quality: 80 })
		.toBuffer();

/** Puts `n` objects under `prefix` into the local bucket of `persistTo`, as a backfill finds them. */
export async function seedObjects(persistTo: string, prefix: string, n: number): Promise<void> {
	await seedPrefixes(persistTo, { [prefix]: n });
}

/**
 * The same for several prefixes (`{ "a/": 40, "b/": 40 }`) with one local runtime: starting one
 * costs about a second of CPU. Keys are `<prefix>000000.jpg` onwards; no job is made.
 */
export async function seedPrefixes(persistTo: string, counts: Record<string, number>): Promise<void> {
	const proxy = await getPlatformProxy<{ BUCKET: { put(key: string, value: Uint8Array): Promise<unknown> } }>({
		configPath: WORKER_CONFIGS.status,
		persist: { path: path.join(persistTo, "v3") },
	});
	try {
		const bytes = await tinyJpeg();
		for (const [prefix, n] of Object.entries(counts)) {
			for (let i = 0; i < n; i += 50) {
				const keys = Array.from(
					{ length: Math.min(50, n - i) },
					(_, j) => `${prefix}${String(i + j).padStart(6, "0")}.jpg`,
				);
				await Promise.all(keys.map((key) => proxy.env.BUCKET.put(key, bytes)));
			}
		}
	} finally {
		await proxy.dispose();
	}
}

// ── Metering ──────────────────────────────────────────────────────────────────────────────────
const MeterLine = z.object({
	worker: z.string(),
	invocation: z.string(),
	d1Queries: z.number(),
	rowsRead: z.number(),
	rowsWritten: z.number(),
	sent: z.record(z.string(), z.number()),
	received: z.number(),
	retried: z.number(),
	r2: z.record(z.string(), z.number()),
	ms: z.number(),
	stages: z.record(z.string(), z.record(z.string(), z.object({ n: z.number(), ms: z.number() }))),
	rowsWrittenByStage: z.record(z.string(), z.number()),
	rowsWrittenBySql: z.record(z.string(), z.object({ n: z.number(), rows: z.number() })),
});
export type MeterLine = z.infer<typeof MeterLine>;

/** Where the log ends now: meter lines after this offset belong to what runs next. */
export const logOffset = async (logPath: string) => (await stat(logPath)).size;

export async function meterLines(logPath: string, fromOffset: number): Promise<MeterLine[]> {
	const text = (await readFile(logPath)).subarray(fromOffset).toString("utf8");
	return [...text.matchAll(/METER (\{.*\})/g)].map((m) => MeterLine.parse(JSON.parse(m[1] ?? "")));
}

export interface Cost {
	images: number;
	/** Per 1,000 images: */
	d1Queries: number;
	d1RowsRead: number;
	d1RowsWritten: number;
	queueMessages: number;
	/** Written + read + deleted (one each per message of up to 64 KB; a retry reads again). */
	queueOperations: number;
	invocations: number;
	/** R2 operations as R2 bills them: Class A (put, list, multipart), Class B (head, get); deletes are free. */
	r2ClassA: number;
	r2ClassB: number;
	/** R2 calls by method. */
	r2: Record<string, number>;
	/** The same per Worker, per 1,000 images. */
	byWorker: Record<string, { invocations: number; d1RowsRead: number; d1RowsWritten: number; queueMessages: number }>;
	/** The caption consumer's round trips per message, by stage. */
	breakdown: Breakdown;
	/** D1 rows written per image by statement (the start of its SQL), most first: runs and rows. */
	rowsWrittenBySql: { sql: string; runs: number; rows: number }[];
}

export interface Breakdown {
	/** Caption queue messages the consumer received (deliveries, retries included). */
	messages: number;
	/** Wall time of the consumer's caption invocations per message (ms). */
	msPerMessage: number;
	/** Per stage and kind of round trip: count and summed time per message. */
	stages: Record<string, Record<string, { n: number; ms: number }>>;
	/** D1 rows written per message, by stage. */
	rowsWritten: Record<string, number>;
}

/** The caption consumer's round trips, by stage, per message it received. */
function breakdown(lines: MeterLine[]): Breakdown {
	// Both lanes' queues: uploads come on caption-jobs, a batch's jobs on caption-batch-jobs.
	const caption = lines.filter((l) => l.worker === "consumer" && /^queue caption-(batch-)?jobs$/.test(l.invocation));
	const messages = caption.reduce((a, l) => a + l.received, 0);
	const per = (v: number) => round(v / Math.max(1, messages), 2);
	const totals: Record<string, Record<string, { n: number; ms: number }>> = {};
	for (const line of caption) {
		for (const [stage, kinds] of Object.entries(line.stages)) {
			for (const [kind, t] of Object.entries(kinds)) {
				const byKind = totals[stage] ?? {};
				totals[stage] = byKind;
				byKind[kind] = { n: (byKind[kind]?.n ?? 0) + t.n, ms: (byKind[kind]?.ms ?? 0) + t.ms };
			}
		}
	}
	const stages = Object.fromEntries(
		STAGES.map((stage) => [
			stage,
			Object.fromEntries(Object.entries(totals[stage] ?? {}).map(([k, t]) => [k, { n: per(t.n), ms: per(t.ms) }])),
		]),
	);
	const rowsWritten = Object.fromEntries(
		STAGES.map((stage) => [stage, per(caption.reduce((a, l) => a + (l.rowsWrittenByStage[stage] ?? 0), 0))]),
	);
	return { messages, msPerMessage: per(caption.reduce((a, l) => a + l.ms, 0)), stages, rowsWritten };
}

/** Rows written per image by statement, the statements that wrote any, most first. */
function bySql(lines: MeterLine[], images: number): Cost["rowsWrittenBySql"] {
	const totals = new Map<string, { n: number; rows: number }>();
	for (const line of lines) {
		for (const [sql, t] of Object.entries(line.rowsWrittenBySql)) {
			const sum = totals.get(sql) ?? { n: 0, rows: 0 };
			totals.set(sql, { n: sum.n + t.n, rows: sum.rows + t.rows });
		}
	}
	return [...totals]
		.filter(([, t]) => t.rows > 0)
		.map(([sql, t]) => ({ sql, runs: round(t.n / images, 3), rows: round(t.rows / images, 3) }))
		.sort((a, b) => b.rows - a.rows);
}

/** R2Bucket methods by R2's operation classes (developers.cloudflare.com/r2/pricing/). */
const CLASS_A = ["put", "list", "createMultipartUpload"];
const CLASS_B = ["head", "get"];

/** Adds up the pipeline's invocations (not the benchmark's own GET polling) per 1,000 images. */
export function cost(lines: MeterLine[], images: number): Cost {
	const work = lines.filter((l) => !l.invocation.startsWith("fetch GET"));
	const per = (v: number) => round((v * 1000) / images, 1);
	const sum = (ls: MeterLine[], f: (l: MeterLine) => number) => ls.reduce((a, l) => a + f(l), 0);
	const sent = (l: MeterLine) => Object.values(l.sent).reduce((a, b) => a + b, 0);
	const ops = (ls: MeterLine[]) => sum(ls, sent) + sum(ls, (l) => l.received) + sum(ls, (l) => l.received - l.retried);
	const workers = [...new Set(work.map((l) => l.worker))];
	const r2 = (method: string) => sum(work, (l) => l.r2[method] ?? 0);
	const methods = [...new Set(work.flatMap((l) => Object.keys(l.r2)))];
	return {
		images,
		d1Queries: per(sum(work, (l) => l.d1Queries)),
		d1RowsRead: per(sum(work, (l) => l.rowsRead)),
		d1RowsWritten: per(sum(work, (l) => l.rowsWritten)),
		queueMessages: per(sum(work, sent)),
		queueOperations: per(ops(work)),
		invocations: per(work.length),
		r2ClassA: per(CLASS_A.reduce((a, m) => a + r2(m), 0)),
		r2ClassB: per(CLASS_B.reduce((a, m) => a + r2(m), 0)),
		r2: Object.fromEntries(methods.map((m) => [m, per(r2(m))])),
		breakdown: breakdown(work),
		rowsWrittenBySql: bySql(work, images),
		byWorker: Object.fromEntries(
			workers.map((w) => {
				const ls = work.filter((l) => l.worker === w);
				return [
					w,
					{
						invocations: per(ls.length),
						d1RowsRead: per(sum(ls, (l) => l.rowsRead)),
						d1RowsWritten: per(sum(ls, (l) => l.rowsWritten)),
						queueMessages: per(sum(ls, sent)),
					},
				];
			}),
		),
	};
}

/** Waits until the log has stopped growing for `quietMs` (the last deliveries and events have run). */
export async function settleLog(logPath: string, quietMs = 4000, timeoutMs = 120_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	let last = -1;
	let since = Date.now();
	while (Date.now() < deadline) {
		const n = await logLineCount(logPath);
		if (n !== last) {
			last = n;
			since = Date.now();
		} else if (Date.now() - since >= quietMs) return;
		await new Promise((r) => setTimeout(r, 250));
	}
}

// ── Backfill ──────────────────────────────────────────────────────────────────────────────────
export interface BatchJson {
	id: string;
	status: string;
	counts: Record<string, number>;
	created_at: string;
	listed_at: string | null;
	completed_at: string | null;
}

/** Creates a batch with `body` and polls it (every 500 ms) until it has completed or `deadline` passed. */
export async function runBatch(stack: Stack, body: Record<string, unknown>, deadline: number): Promise<BatchJson> {
	const res = await fetch(`${stack.url}/v1/batches`, {
		method: "POST",
		headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/json" },
		body: JSON.stringify(body),
	});
	if (res.status !== 202) throw new Error(`POST /v1/batches: ${res.status} ${await res.text()}`);
	const created = (await res.json()) as BatchJson;
	const client = api(stack);
	let batch = created;
	while (batch.completed_at === null && Date.now() < deadline) {
		await new Promise((r) => setTimeout(r, 500));
		batch = (await ok(client.GET("/v1/batches/{id}", { params: { path: { id: created.id } } }))) as BatchJson;
	}
	return batch;
}

export interface BackfillResult {
	n: number;
	status: string;
	counts: Record<string, number>;
	listingSeconds: number;
	listedPerSecond: number;
	secondsToCompleted: number;
	captionsPerSecond: number;
	cost: Cost;
	/** With write-back: the sidecars' notifications the consumer recognised and ignored. */
	echoesIgnored?: number;
	/** With write-back: jobs (and so model calls) the batch made, echoes included. */
	jobsMade?: number;
}

/** A 0 ms model without rate limits or pacing: the runs measure the pipeline's own work. */
export const BENCH_VARS = { EMULATOR_LATENCY_MS: "0", MODEL_RATE_LIMITS: "off", EMULATOR_RATE_LIMITS: "off" };

export async function runBackfill(options: {
	bundles: Bundles & { webhooks: string };
	workDir: string;
	n: number;
	log: (line: string) => void;
	/** Tags written back as a sidecar next to each image (each sidecar's notification is an echo). */
	writeBack?: boolean;
}): Promise<BackfillResult> {
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	const prefix = "backfill/";
	const outputs = options.writeBack ? { output: "tags", write_back: "sidecar" } : {};
	options.log(`  seeding ${options.n} objects straight into the bucket`);
	await seedObjects(persistTo, prefix, options.n);
	const stack = await startStack({
		consumer: "real",
		bundles: options.bundles,
		webhooksBundle: options.bundles.webhooks,
		persistTo,
		workDir: options.workDir,
		vars: BENCH_VARS,
	});
	try {
		const from = await logOffset(stack.logPath);
		const deadline = Date.now() + 30 * 60_000;
		const batch = await runBatch(stack, { prefix, ...outputs }, deadline);
		const client = api(stack);
		const echoes = async () => (await ok(client.GET("/v1/stats"))).counters.write_back_echoes ?? 0;
		// The last write-backs' echoes arrive after the batch completes.
		while (options.writeBack && (await echoes()) < options.n && Date.now() < deadline) {
			await new Promise((r) => setTimeout(r, 500));
		}
		await settleLog(stack.logPath);
		const jobs = (await ok(client.GET("/v1/stats"))).counts.total;
		const createdAt = Date.parse(batch.created_at);
		const listingSeconds = (Date.parse(batch.listed_at ?? "") - createdAt) / 1000;
		const secondsToCompleted = (Date.parse(batch.completed_at ?? "") - createdAt) / 1000;
		return {
			n: options.n,
			status: batch.status,
			counts: batch.counts,
			listingSeconds: round(listingSeconds, 2),
			listedPerSecond: round((batch.counts.total ?? 0) / listingSeconds, 1),
			secondsToCompleted: round(secondsToCompleted, 2),
			captionsPerSecond: round((batch.counts.succeeded ?? 0) / secondsToCompleted, 1),
			cost: cost(await meterLines(stack.logPath, from), options.n),
			...(options.writeBack ? { echoesIgnored: await echoes(), jobsMade: jobs } : {}),
		};
	} finally {
		await stack.stop();
	}
}

/**
 * The cost of `n` uploads through `PUT /v1/images` (each one's notification included) with one
 * consumer; `paced`: with the lane scheduler pacing the platform's rate limits, as deployed.
 */
export async function runUploadCost(options: {
	bundles: Bundles & { webhooks: string };
	consumer: "real" | "naive";
	workDir: string;
	n: number;
	paced?: boolean;
}): Promise<Cost> {
	const stack = await startStack({
		consumer: options.consumer,
		bundles: options.bundles,
		webhooksBundle: options.bundles.webhooks,
		workDir: options.workDir,
		// Paced: the consumer's configured limits (its wrangler.jsonc), the emulator enforcing none.
		vars: options.paced ? { EMULATOR_LATENCY_MS: "0", EMULATOR_RATE_LIMITS: "off" } : BENCH_VARS,
	});
	try {
		const from = await logOffset(stack.logPath);
		const bytes = await tinyJpeg();
		const client = api(stack);
		for (let i = 0; i < options.n; i += 16) {
			await Promise.all(
				Array.from({ length: Math.min(16, options.n - i) }, (_, j) =>
					uploadImage(client, `uploads/${String(i + j).padStart(6, "0")}.jpg`, new Blob([bytes])),
				),
			);
		}
		await waitUntilTerminal(stack, 10 * 60_000);
		await settleLog(stack.logPath);
		return cost(await meterLines(stack.logPath, from), options.n);
	} finally {
		await stack.stop();
	}
}

// ── Export ────────────────────────────────────────────────────────────────────────────────────
const sql = (s: string) => `'${s.replaceAll("'", "''")}'`;
const ROWS_PER_STATEMENT = 100;

/** A running batch `id` with `n` succeeded jobs under `prefix`, as generated SQL files of 20,000 rows. */
async function seedBatch(persistTo: string, workDir: string, id: string, prefix: string, n: number): Promise<void> {
	const now = Date.now();
	const head = `INSERT INTO batches (id, status, bucket, prefix, key_prefix, metadata, skip_captioned, pages_listed,
		total, succeeded, created_at, updated_at, listed_at, completed_at)
		VALUES (${sql(id)}, 'completed', 'images', ${sql(prefix)}, ${sql(prefix)}, '{}', 1, ${Math.ceil(n / 1000)},
		${n}, ${n}, ${now}, ${now}, ${now}, ${now});`;
	for (let lo = 0; lo < n; lo += 20_000) {
		const statements: string[] = lo === 0 ? [head] : [];
		for (let chunk = lo; chunk < Math.min(n, lo + 20_000); chunk += ROWS_PER_STATEMENT) {
			const values: string[] = [];
			for (let i = chunk; i < Math.min(n, chunk + ROWS_PER_STATEMENT); i++) {
				const key = `${prefix}${String(i).padStart(7, "0")}.jpg`;
				// A caption the size of a real one, with the characters CSV has to quote.
				const caption = `A "seeded" caption, number ${i}, of a photo: sky, hills and a lake at dusk.`;
				values.push(
					`(${sql(newJobId(now))}, 'batch', ${sql(id)}, 'images', ${sql(key)}, ${sql(`etag${i}`)}, 2048, 'image/jpeg',
					'Generate a caption for this image', 512, 'succeeded', '@cf/unum/uform-gen2-qwen-500m', ${sql(caption)},
					1, ${now}, ${now}, ${now}, ${now}, 5, 0, 10)`.replace(/\s+/g, " "),
				);
			}
			statements.push(`INSERT INTO jobs (id, source, batch_id, bucket, key, etag, size, content_type, prompt, max_tokens,
				status, model, caption, attempts, created_at, updated_at, started_at, completed_at, queue_ms, inference_ms,
				total_ms) VALUES ${values.join(",\n")};`);
		}
		const file = path.join(workDir, `seed-${id}-${lo}.sql`);
		await writeFile(file, statements.join("\n"));
		await wrangler(["d1", "execute", "r2-captions", "--local", "--persist-to", persistTo, "--file", file, "--yes"]);
	}
}

export interface ExportResult {
	jobs: number;
	format: string;
	seconds: number;
	rowsPerSecond: number;
	megabytes: number;
	lines: number;
	workerdAtStartMb: number;
	workerdPeakAboveStartMb: number;
}

/** Downloads one export, counting lines as they stream, while sampling workerd's memory. */
const measureExport = (stack: Stack, id: string, jobs: number, format: string) =>
	measureDownload(stack, `/v1/batches/${id}/results?format=${format}`, jobs, format);

/** Downloads `urlPath` (an export of `jobs` rows), counting lines as they stream, while sampling workerd's memory. */
export async function measureDownload(
	stack: Stack,
	urlPath: string,
	jobs: number,
	format: string,
): Promise<ExportResult> {
	await new Promise((r) => setTimeout(r, 2000));
	await resetPeak(stack.workerdPid);
	const atStart = await statusField(stack.workerdPid, "VmRSS");
	let peak = atStart;
	let done = false;
	const sampler = (async () => {
		while (!done) {
			peak = Math.max(peak, await statusField(stack.workerdPid, "VmRSS"));
			await new Promise((r) => setTimeout(r, 20));
		}
	})();
	const started = Date.now();
	const res = await fetch(`${stack.url}${urlPath}`, {
		headers: { authorization: `Bearer ${stack.token}` },
	});
	if (res.status !== 200 || !res.body) throw new Error(`export ${format}: ${res.status}`);
	let bytes = 0;
	let lines = 0;
	for await (const chunk of res.body) {
		bytes += chunk.length;
		for (const byte of chunk) if (byte === 10) lines++;
	}
	const seconds = (Date.now() - started) / 1000;
	done = true;
	await sampler;
	peak = Math.max(peak, await statusField(stack.workerdPid, "VmHWM"));
	return {
		jobs,
		format,
		seconds: round(seconds, 2),
		rowsPerSecond: round(jobs / seconds, 0),
		megabytes: round(bytes / 1e6, 1),
		lines,
		workerdAtStartMb: round(atStart),
		workerdPeakAboveStartMb: round(peak - atStart),
	};
}

export async function runExport(options: {
	bundles: Bundles;
	workDir: string;
	sizes: number[];
	log: (line: string) => void;
}): Promise<ExportResult[]> {
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	for (const size of options.sizes) {
		options.log(`  seeding a batch of ${size} jobs`);
		await seedBatch(persistTo, options.workDir, `bat_EXPORT${size}`, `export-${size}/`, size);
	}
	const stack = await startStack({ consumer: "real", bundles: options.bundles, persistTo, workDir: options.workDir });
	try {
		const results: ExportResult[] = [];
		for (const size of options.sizes) {
			for (const format of ["jsonl", "csv", "hf"]) {
				const result = await measureExport(stack, `bat_EXPORT${size}`, size, format);
				options.log(`  ${size} jobs, ${format}: ${result.rowsPerSecond} rows/s, +${result.workerdPeakAboveStartMb} MB`);
				results.push(result);
			}
		}
		return results;
	} finally {
		await stack.stop();
	}
}
