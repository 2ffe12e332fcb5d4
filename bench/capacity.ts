/**
 * The capacity scenario of `npm run bench` (`--only capacity`): how many images one D1 database
 * holds. N images are captioned on the local stack with one webhook subscription (every job makes
 * an event, a delivery and an attempt), then D1's size is read per table and index with SQLite's
 * `dbstat` on the local database file; then the retention sweep runs (retention of 0 days: what
 * stays is what stays for good) and the size is read again.
 *
 * - `d1_bytes_per_image`: bytes per image while everything is retained (before the sweep);
 * - `steady_bytes_per_object`: bytes per object after retention besides its caption's text (the
 *   caption's UTF-8 bytes are taken off: its length is the model's, not the schema's);
 *   `steady_bytes_per_object_with_caption` with them;
 * - `images_per_10gb`: objects one 10 GB database holds in that steady state (captions included);
 * - `days_to_fill_at_limit`: days a backfill of new objects at the account's model limits takes to
 *   fill 10 GB with retention on (the retained window of webhook rows included); `null` when what
 *   stays per object is nothing (storage stays bounded);
 * - the sweep's D1 rows written per image: the rest of an image's lifetime cost in rows written.
 *
 * Sizes are deltas from the empty migrated database, in whole pages (what the file holds), so
 * small runs carry some page rounding; freed pages go to SQLite's freelist and are reused. They
 * are read through SQLite (dbstat walks the current snapshot, WAL frames included), not from the
 * file's length, so no checkpoint is needed.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { z } from "zod";
import { ok } from "../client/index.ts";
import { type Delivery, startReceiver } from "../scripts/lib/webhook-receiver.ts";
import { api, runPipeline } from "./pipeline.ts";
import { type Stack, startStack } from "./stack.ts";
import { round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

/** A D1 database's size limit on Workers Paid (developers.cloudflare.com/d1/platform/limits/). */
const D1_LIMIT_BYTES = 10 * 10 ** 9;
/** The account's model limits (Image-to-Text 720/min and Text Generation 300/min), both used at once. */
const IMAGES_PER_DAY_AT_LIMIT = (720 + 300) * 60 * 24;
/** The default RETENTION_WEBHOOKS_DAYS: the webhook rows of this many days stay in steady state. */
const WEBHOOK_WINDOW_DAYS = 7;

export interface TableSize {
	table: string;
	/** The table's own pages. */
	tableBytes: number;
	/** Its indexes' pages (the primary key of a table with a text key included). */
	indexBytes: number;
	bytesPerImage: number;
	/** Per image, the table's own pages and each index's (the primary key of a WITHOUT ROWID table is the table). */
	parts: Record<string, number>;
}

export interface CapacityResult {
	n: number;
	succeeded: number;
	meanCaptionChars: number;
	/** UTF-8 bytes of the mean caption: what `steady_bytes_per_object` leaves out. */
	meanCaptionBytes: number;
	d1_bytes_per_image: number;
	steady_bytes_per_object: number;
	steady_bytes_per_object_with_caption: number;
	images_per_10gb: number;
	images_per_10gb_without_retention: number;
	days_to_fill_at_limit: number | null;
	days_to_fill_without_retention: number;
	sweep_rows_written_per_image: number;
	rows_deleted: { jobs: number; webhook_events: number; batches: number };
	retained: TableSize[];
	steady: TableSize[];
}

/** The local D1 database file of a stack's state directory. */
export async function databaseFile(persistTo: string): Promise<string> {
	const dir = path.join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
	const file = (await readdir(dir)).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
	if (!file) throw new Error(`no D1 database file in ${dir}`);
	return path.join(dir, file);
}

const PageRow = z.object({ name: z.string(), tbl: z.string(), type: z.string(), bytes: z.number() });

/** Bytes in pages per table and index (SQLite's dbstat), read-only beside the running stack. */
function sizes(file: string): Map<string, { table: string; isIndex: boolean; bytes: number }> {
	const db = new DatabaseSync(file, { readOnly: true });
	try {
		const rows = db
			.prepare(
				`SELECT d.name AS name, coalesce(s.tbl_name, d.name) AS tbl, coalesce(s.type, 'table') AS type, sum(d.pgsize) AS bytes
				FROM dbstat d LEFT JOIN sqlite_schema s ON s.name = d.name GROUP BY d.name`,
			)
			.all()
			.map((row) => PageRow.parse(row));
		return new Map(rows.map((r) => [r.name, { table: r.tbl, isIndex: r.type === "index", bytes: r.bytes }]));
	} finally {
		db.close();
	}
}

type Sizes = ReturnType<typeof sizes>;

/** Growth per table since `base`, largest first. */
function growth(base: Sizes, now: Sizes, n: number): TableSize[] {
	const tables = new Map<string, TableSize>();
	for (const [name, size] of now) {
		const delta = size.bytes - (base.get(name)?.bytes ?? 0);
		const entry = tables.get(size.table) ?? {
			table: size.table,
			tableBytes: 0,
			indexBytes: 0,
			bytesPerImage: 0,
			parts: {},
		};
		if (size.isIndex) entry.indexBytes += delta;
		else entry.tableBytes += delta;
		if (delta !== 0) entry.parts[name] = round(delta / n, 1);
		tables.set(size.table, entry);
	}
	return [...tables.values()]
		.map((t) => ({ ...t, bytesPerImage: round((t.tableBytes + t.indexBytes) / n, 1) }))
		.filter((t) => t.tableBytes + t.indexBytes !== 0)
		.sort((a, b) => b.tableBytes + b.indexBytes - (a.tableBytes + a.indexBytes));
}

const total = (tables: TableSize[]) => tables.reduce((sum, t) => sum + t.tableBytes + t.indexBytes, 0);

const Retention = z.object({
	jobs_deleted: z.number(),
	webhook_events_deleted: z.number(),
	batches_deleted: z.number(),
	rows_written: z.number(),
	truncated: z.boolean(),
	skipped: z.boolean(),
});
const SweepReport = z.object({ consumer: z.object({ retention: Retention }) });

/** Runs `POST /v1/admin/sweep` until the retention sweep has gone through everything. */
async function sweepAll(stack: Stack) {
	const sum = { jobs: 0, webhook_events: 0, batches: 0, rowsWritten: 0 };
	for (let i = 0; i < 100; i++) {
		const res = await fetch(`${stack.url}/v1/admin/sweep`, {
			method: "POST",
			headers: { Authorization: `Bearer ${stack.token}` },
		});
		if (!res.ok) throw new Error(`POST /v1/admin/sweep answered ${res.status}: ${await res.text()}`);
		const { retention } = SweepReport.parse(await res.json()).consumer;
		sum.jobs += retention.jobs_deleted;
		sum.webhook_events += retention.webhook_events_deleted;
		sum.batches += retention.batches_deleted;
		sum.rowsWritten += retention.rows_written;
		if (!retention.truncated && !retention.skipped) return sum;
	}
	throw new Error("the retention sweep did not finish in 100 runs");
}

/**
 * Days until 10 GB at the limit with retention: for the first WEBHOOK_WINDOW_DAYS everything an
 * image writes stays; from then on each day's growth is what stays per object (as much leaves as
 * arrives of the rest). null when nothing stays: the database stops growing.
 */
function daysToFill(perImage: number, perObject: number): number | null {
	const daily = (bytes: number) => bytes * IMAGES_PER_DAY_AT_LIMIT;
	const window = daily(perImage) * WEBHOOK_WINDOW_DAYS;
	if (window >= D1_LIMIT_BYTES) return round(D1_LIMIT_BYTES / daily(perImage), 1);
	if (perObject <= 0) return null;
	return round(WEBHOOK_WINDOW_DAYS + (D1_LIMIT_BYTES - window) / daily(perObject), 1);
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 250));
	}
}

export async function runCapacity(options: {
	bundles: Record<"status" | "real" | "naive", string>;
	webhooksBundle: string;
	workDir: string;
	images: WorkloadImage[];
	n: number;
	log: (line: string) => void;
}): Promise<CapacityResult> {
	const deliveries: Delivery[] = [];
	const secrets = new Map<string, string>();
	const receiver = await startReceiver(secrets, (d) => deliveries.push(d));
	const stack = await startStack({
		consumer: "real",
		bundles: options.bundles,
		webhooksBundle: options.webhooksBundle,
		workDir: options.workDir,
		// Every row may go at the sweep: what stays then is what stays for good.
		vars: {
			MODEL_RATE_LIMITS: "off",
			EMULATOR_RATE_LIMITS: "off",
			RETENTION_WEBHOOKS_DAYS: "0",
			RETENTION_JOBS_DAYS: "0",
			RETENTION_BATCHES_DAYS: "0",
		},
	});
	try {
		const file = await databaseFile(stack.persistTo);
		const prefix = "bench/capacity/";
		const subscription = await ok(
			api(stack).POST("/v1/webhooks", {
				body: { url: receiver.url("/subscription"), events: ["job.succeeded", "job.failed"], prefix },
			}),
		);
		secrets.set("/subscription", subscription.secret);
		const base = sizes(file);
		options.log(`capacity: ${options.n} images with one webhook subscription`);
		const { summary, jobs } = await runPipeline(stack, {
			prefix,
			images: options.images,
			n: options.n,
			concurrency: 16,
			timeoutMs: 120_000 + options.n * 200,
			latencyMs: 0,
		});
		await until("every webhook", () => deliveries.length >= options.n, 120_000 + options.n * 100);
		// The receiver has answered; give the webhooks Worker a moment to record the last attempts.
		await new Promise((r) => setTimeout(r, 3000));
		const retained = growth(base, sizes(file), options.n);
		const swept = await sweepAll(stack);
		const steady = growth(base, sizes(file), options.n);

		const perImage = total(retained) / options.n;
		const perObject = total(steady) / options.n;
		const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
		const captionBytes = mean(jobs.map((j) => Buffer.byteLength(j.caption ?? "", "utf8")));
		return {
			n: options.n,
			succeeded: summary.succeeded,
			meanCaptionChars: round(mean(jobs.map((j) => j.caption?.length ?? 0)), 1),
			meanCaptionBytes: round(captionBytes, 1),
			d1_bytes_per_image: round(perImage, 0),
			steady_bytes_per_object: round(perObject - captionBytes, 0),
			steady_bytes_per_object_with_caption: round(perObject, 0),
			images_per_10gb: perObject > 0 ? Math.floor(D1_LIMIT_BYTES / perObject) : Number.POSITIVE_INFINITY,
			images_per_10gb_without_retention: Math.floor(D1_LIMIT_BYTES / perImage),
			days_to_fill_at_limit: daysToFill(perImage, perObject),
			days_to_fill_without_retention: round(D1_LIMIT_BYTES / (perImage * IMAGES_PER_DAY_AT_LIMIT), 1),
			sweep_rows_written_per_image: round(swept.rowsWritten / options.n, 1),
			rows_deleted: { jobs: swept.jobs, webhook_events: swept.webhook_events, batches: swept.batches },
			retained,
			steady,
		};
	} finally {
		await stack.stop();
		await receiver.close();
	}
}

export function capacityMarkdown(c: CapacityResult | null): string[] {
	if (!c) return [];
	const tables = [...new Set([...c.retained, ...c.steady].map((t) => t.table))];
	const per = (list: TableSize[], table: string) => list.find((t) => t.table === table)?.bytesPerImage ?? 0;
	return [
		`#### Capacity: D1 bytes per image (N = ${c.n}, one webhook subscription, captions of ${c.meanCaptionChars} characters)`,
		"",
		"| measure | value |",
		"| --- | --- |",
		`| D1 bytes per image, everything retained | ${c.d1_bytes_per_image} |`,
		`| D1 bytes per object after retention (steady state), besides the caption's ${c.meanCaptionBytes} bytes / with it | ${c.steady_bytes_per_object} / ${c.steady_bytes_per_object_with_caption} |`,
		`| images per 10 GB database: without retention / steady state | ${c.images_per_10gb_without_retention} / ${c.images_per_10gb} |`,
		`| days to fill 10 GB at 1,020 images/min: without retention / with it | ${c.days_to_fill_without_retention} / ${c.days_to_fill_at_limit ?? "never (bounded)"} |`,
		`| retention sweep: D1 rows written per image | ${c.sweep_rows_written_per_image} |`,
		"",
		"| table (with its indexes) | bytes per image, retained | bytes per object, steady | retained, by table and index |",
		"| --- | --- | --- | --- |",
		...tables.map(
			(t) =>
				`| \`${t}\` | ${per(c.retained, t)} | ${per(c.steady, t)} | ${Object.entries(
					c.retained.find((r) => r.table === t)?.parts ?? {},
				)
					.map(([name, bytes]) => `${name} ${bytes}`)
					.join(", ")} |`,
		),
		"",
	];
}
