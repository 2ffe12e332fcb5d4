/**
 * A batch's results as a file, streamed: rows come from D1 a keyset page at a time in key order
 * (or, with `since`, in completion order: every result of a batch has a number of the batch's own
 * counter, given in the transaction that made it a result; migrations/0022_live_results.sql)
 * (the jobs_batch_key index; batch_skips for skipped objects, whose rows are the earlier jobs
 * that hold their captions; batch_missing for given keys that were not in the bucket) and leave as soon as they are rendered, so memory stays the size of a
 * page whatever the batch's size.
 *
 * - `jsonl`: one Job JSON per line (a missing key: `{key, status: "missing", error}`).
 * - `csv`: RFC 4180 (CRLF, quoted where needed, header row), rendered by csv-stringify.
 * - `hf`: the `metadata.jsonl` of a Hugging Face `imagefolder` dataset: `{"file_name", "text"}` for
 *   each succeeded job, `file_name` relative to the folder of the batch's prefix.
 */
import { stringify } from "csv-stringify/sync";
import { z } from "zod";
import type { BatchRow } from "../../../shared/batches/schema";
import { parseRows } from "../../../shared/d1-rows";
import { iso } from "../../../shared/iso";
import { CSV_COLUMNS, spreadsheetSafe } from "../../../shared/jobs/csv-columns";
import { JobRow, toJob } from "../../../shared/jobs/schema";
import { JOB_COLUMNS, jobColumns } from "../../../shared/jobs/texts";
import { pagedStream } from "../paged-stream";

export const EXPORT_FORMATS = ["jsonl", "csv", "hf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * The cursor of a completion-order export: the batch's completion counter as the `Next-Cursor`
 * header gave it (`0`: before the first result).
 */
export const ResultsCursor = z
	.string()
	.regex(/^\d{1,15}$/, "Not a cursor: pass the Next-Cursor header of an earlier response, or 0")
	.transform(Number);

/** Rows read from D1 per query. */
export const EXPORT_PAGE_ROWS = 500;

/** SQLite's order of TEXT: UTF-8 bytes, that is code points (`<` on JS strings compares UTF-16 units). */
export function byCodePoint(a: string, b: string): number {
	const x = Array.from(a);
	const y = Array.from(b);
	for (let i = 0; i < Math.min(x.length, y.length); i++) {
		const d = (x[i]?.codePointAt(0) ?? 0) - (y[i]?.codePointAt(0) ?? 0);
		if (d !== 0) return d;
	}
	return x.length - y.length;
}

/**
 * One row of the export: a job (the batch's own, or the earlier one a skipped object points to), or
 * a missing key; `seq` is its place in the batch's completion order (null for a job not finished yet).
 */
export type ResultRow =
	| { kind: "job"; key: string; seq: number | null; job: JobRow }
	| { kind: "missing"; key: string; seq: number | null };

const Seq = z.number().int().nullable();
const JobResult = JobRow.extend({ seq: Seq });
const MissingResult = z.object({ key: z.string(), seq: Seq });
const jobRow = (job: z.infer<typeof JobResult>): ResultRow => ({ kind: "job", key: job.key, seq: job.seq, job });
const missingRow = (row: z.infer<typeof MissingResult>): ResultRow => ({ kind: "missing", key: row.key, seq: row.seq });

/** How the sources are read and merged: by key, or by completion number within (since, upto]. */
type Order = { by: "key" } | { by: "seq"; since: number; upto: number };

/**
 * Reads one source of rows (parsed with `schema`) in `order`, a page at a time: `?2` is the last
 * position read, `?3` the page size, `?4` the upper bound of a completion-order read.
 */
function pager<T>(
	db: D1Database,
	sql: string,
	batchId: string,
	order: Order,
	pageRows: number,
	schema: z.ZodType<T>,
	toRow: (row: T) => ResultRow,
) {
	let after: string | number = order.by === "key" ? "" : order.since;
	let exhausted = false;
	const bounds = order.by === "key" ? [] : [order.upto];
	return async (): Promise<ResultRow[]> => {
		if (exhausted) return [];
		const rows = (
			await db
				.prepare(sql)
				.bind(batchId, after, pageRows, ...bounds)
				.all()
				.then(parseRows(schema))
		).map(toRow);
		exhausted = rows.length < pageRows;
		const last = rows.at(-1);
		if (last) after = order.by === "key" ? last.key : (last.seq ?? after);
		return rows;
	};
}

/** The three sources of a batch's rows, each read through its index in `order`. */
function sources(db: D1Database, batchId: string, order: Order, pageRows: number) {
	const range =
		order.by === "key"
			? {
					jobs: "key > ?2",
					skips: "s.key > ?2",
					missing: "key > ?2",
					jobOrder: "key",
					skipOrder: "s.key",
					missingOrder: "key",
				}
			: {
					jobs: "batch_seq > ?2 AND batch_seq <= ?4",
					skips: "s.seq > ?2 AND s.seq <= ?4",
					missing: "seq > ?2 AND seq <= ?4",
					jobOrder: "batch_seq",
					skipOrder: "s.seq",
					missingOrder: "seq",
				};
	return [
		pager(
			db,
			`SELECT ${JOB_COLUMNS}, batch_seq AS seq FROM jobs WHERE batch_id = ?1 AND ${range.jobs} ORDER BY ${range.jobOrder} LIMIT ?3`,
			batchId,
			order,
			pageRows,
			JobResult,
			jobRow,
		),
		pager(
			db,
			`SELECT ${jobColumns("j.")}, s.seq AS seq FROM batch_skips s JOIN jobs j ON j.id = s.job_id
			WHERE s.batch_id = ?1 AND ${range.skips} ORDER BY ${range.skipOrder} LIMIT ?3`,
			batchId,
			order,
			pageRows,
			JobResult,
			jobRow,
		),
		pager(
			db,
			`SELECT key, seq FROM batch_missing WHERE batch_id = ?1 AND ${range.missing} ORDER BY ${range.missingOrder} LIMIT ?3`,
			batchId,
			order,
			pageRows,
			MissingResult,
			missingRow,
		),
	];
}

/** Whether row `a` comes before row `b` in `order`. */
const before = (order: Order) =>
	order.by === "key"
		? (a: ResultRow, b: ResultRow) => byCodePoint(a.key, b.key) < 0
		: (a: ResultRow, b: ResultRow) => (a.seq ?? 0) < (b.seq ?? 0);

/** The batch's jobs, the jobs of its skipped objects and its missing keys, merged in `order`, a page at a time. */
async function* mergedRows(db: D1Database, batchId: string, order: Order, pageRows: number) {
	const reads = sources(db, batchId, order, pageRows);
	const precedes = before(order);
	const buffers = await Promise.all(reads.map((read) => read()));
	for (;;) {
		const out: ResultRow[] = [];
		while (out.length < pageRows) {
			// The source whose next row comes first.
			let from = -1;
			buffers.forEach((buffer, i) => {
				const head = buffer[0];
				const best = from < 0 ? undefined : buffers[from]?.[0];
				if (head && (!best || precedes(head, best))) from = i;
			});
			if (from < 0) break;
			const buffer = buffers[from] ?? [];
			const row = buffer.shift();
			if (row) out.push(row);
			const read = reads[from];
			if (buffer.length === 0 && read) buffers[from] = await read();
		}
		if (out.length === 0) return;
		yield out;
	}
}

/** Every row of the batch in key order, a page at a time. */
export const rowsInKeyOrder = (db: D1Database, batchId: string, pageRows = EXPORT_PAGE_ROWS) =>
	mergedRows(db, batchId, { by: "key" }, pageRows);

/**
 * The rows that became results after completion number `since`, up to `upto` (the batch's counter
 * when the request read it), in completion order, a page at a time. Every number up to `upto` was
 * committed before the counter reached it (D1 writes one transaction at a time), so the next call
 * from `upto` neither repeats nor misses a row.
 */
export const rowsInCompletionOrder = (
	db: D1Database,
	batchId: string,
	range: { since: number; upto: number },
	pageRows = EXPORT_PAGE_ROWS,
) => mergedRows(db, batchId, { by: "seq", ...range }, pageRows);

/** A missing key's line in JSON Lines: what a failed job of it would say, without a job. */
export const MissingObjectLine = z.object({
	key: z.string(),
	status: z.literal("missing"),
	error: z.object({ code: z.literal("object_not_found"), message: z.string() }),
});
export type MissingObjectLine = z.infer<typeof MissingObjectLine>;

const missingLine = (key: string): MissingObjectLine => ({
	key,
	status: "missing",
	error: { code: "object_not_found", message: `The object ${key} is not in the bucket.` },
});

/** The folder `metadata.jsonl` describes: the batch's key prefix up to its last `/`. */
export const datasetFolder = (batch: BatchRow) => batch.key_prefix.slice(0, batch.key_prefix.lastIndexOf("/") + 1);

/** A CSV cell: an empty one for no time. */
const isoCell = (ms: number | null) => iso(ms) ?? "";

function renderer(format: ExportFormat, batch: BatchRow): (rows: ResultRow[], first: boolean) => string {
	switch (format) {
		case "jsonl":
			return (rows) =>
				rows.map((row) => `${JSON.stringify(row.kind === "job" ? toJob(row.job) : missingLine(row.key))}\n`).join("");
		case "csv":
			return (rows, first) =>
				stringify(
					rows.map((row) => {
						if (row.kind === "missing") {
							const { status, error } = missingLine(row.key);
							return [row.key, status, null, error.code, error.message, null, null, ""];
						}
						const r = row.job;
						return [
							r.key,
							r.status,
							r.caption,
							r.error_code,
							r.error_message,
							r.model,
							r.prompt,
							isoCell(r.completed_at),
						];
					}),
					{
						header: first,
						columns: [...CSV_COLUMNS],
						record_delimiter: "windows",
						cast: { string: spreadsheetSafe },
					},
				);
		case "hf": {
			const folder = datasetFolder(batch);
			return (rows) =>
				rows
					.flatMap((row) => (row.kind === "job" ? [row.job] : []))
					.filter((r) => r.status === "succeeded" && r.caption !== null)
					.map((r) => `${JSON.stringify({ file_name: r.key.slice(folder.length), text: r.caption })}\n`)
					.join("");
		}
	}
}

/** Content-Type and file name of each format. */
export function exportHeaders(format: ExportFormat, batch: BatchRow): Record<string, string> {
	const [type, file] =
		format === "csv"
			? ["text/csv; charset=utf-8; header=present", `${batch.id}.csv`]
			: ["application/x-ndjson; charset=utf-8", format === "hf" ? "metadata.jsonl" : `${batch.id}.jsonl`];
	return { "Content-Type": type, "Content-Disposition": `attachment; filename="${file}"` };
}

/**
 * The export as a byte stream; D1 is read only as fast as the client takes the bytes. Without
 * `since`: every row in key order; with it: the rows that became results in (since, upto], in
 * completion order.
 */
export function exportStream(
	db: D1Database,
	batch: BatchRow,
	format: ExportFormat,
	range: { since: number; upto: number } | null = null,
): ReadableStream<Uint8Array> {
	const pages = range === null ? rowsInKeyOrder(db, batch.id) : rowsInCompletionOrder(db, batch.id, range);
	const render = renderer(format, batch);
	return pagedStream(pages, render, format === "csv" ? render([], true) : "");
}
