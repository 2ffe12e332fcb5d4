/**
 * A batch's results as a file, streamed: rows come from D1 a keyset page at a time in key order
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
import { pagedStream } from "../paged-stream";

export const EXPORT_FORMATS = ["jsonl", "csv", "hf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

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

/** One row of the export: a job (the batch's own, or the earlier one a skipped object points to), or a missing key. */
export type ResultRow = { kind: "job"; key: string; job: JobRow } | { kind: "missing"; key: string };

const MissingRow = z.object({ key: z.string() });

/** Reads one source of rows (parsed with `schema`) in key order, a page at a time. */
function pager<T>(
	db: D1Database,
	sql: string,
	batchId: string,
	pageRows: number,
	schema: z.ZodType<T>,
	toRow: (row: T) => ResultRow,
) {
	let after = "";
	let exhausted = false;
	return async (): Promise<ResultRow[]> => {
		if (exhausted) return [];
		const rows = (await db.prepare(sql).bind(batchId, after, pageRows).all().then(parseRows(schema))).map(toRow);
		exhausted = rows.length < pageRows;
		after = rows.at(-1)?.key ?? after;
		return rows;
	};
}

const jobRow = (job: JobRow): ResultRow => ({ kind: "job", key: job.key, job });

/**
 * The batch's jobs, the jobs of its skipped objects and its missing keys, merged in key order, a
 * page at a time.
 */
export async function* rowsInKeyOrder(db: D1Database, batchId: string, pageRows = EXPORT_PAGE_ROWS) {
	const sources: (() => Promise<ResultRow[]>)[] = [
		pager(
			db,
			"SELECT * FROM jobs WHERE batch_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
			batchId,
			pageRows,
			JobRow,
			jobRow,
		),
		pager(
			db,
			`SELECT j.* FROM batch_skips s JOIN jobs j ON j.id = s.job_id
			WHERE s.batch_id = ?1 AND s.key > ?2 ORDER BY s.key LIMIT ?3`,
			batchId,
			pageRows,
			JobRow,
			jobRow,
		),
		pager(
			db,
			"SELECT key FROM batch_missing WHERE batch_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
			batchId,
			pageRows,
			MissingRow,
			(row) => ({ kind: "missing", key: row.key }),
		),
	];
	const buffers = await Promise.all(sources.map((read) => read()));
	for (;;) {
		const out: ResultRow[] = [];
		while (out.length < pageRows) {
			// The source whose next row has the smallest key.
			let from = -1;
			buffers.forEach((buffer, i) => {
				const head = buffer[0];
				const best = from < 0 ? undefined : buffers[from]?.[0];
				if (head && (!best || byCodePoint(head.key, best.key) < 0)) from = i;
			});
			if (from < 0) break;
			const buffer = buffers[from] ?? [];
			const row = buffer.shift();
			if (row) out.push(row);
			const read = sources[from];
			if (buffer.length === 0 && read) buffers[from] = await read();
		}
		if (out.length === 0) return;
		yield out;
	}
}

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

/** The export as a byte stream; D1 is read only as fast as the client takes the bytes. */
export function exportStream(db: D1Database, batch: BatchRow, format: ExportFormat): ReadableStream<Uint8Array> {
	const render = renderer(format, batch);
	return pagedStream(rowsInKeyOrder(db, batch.id), render, format === "csv" ? render([], true) : "");
}
