/**
 * The current captions of a prefix as a file (`GET /v1/exports/captions`), in the batch results'
 * formats and rules: read from D1 a page at a time in key order and streamed as rendered.
 *
 * - `jsonl`: one Caption JSON per line.
 * - `csv`: RFC 4180 (CRLF, quoted where needed, header row), cells made spreadsheet-safe.
 * - `hf`: the `metadata.jsonl` of a Hugging Face `imagefolder` dataset, `{"file_name", "text"}`,
 *   `file_name` relative to the folder of the prefix.
 */
import { stringify } from "csv-stringify/sync";
import { type CurrentCaptionRow, toCaption } from "../../../shared/captions/schema";
import { iso } from "../../../shared/iso";
import { spreadsheetSafe } from "../../../shared/jobs/csv-columns";
import type { ExportFormat } from "../batches/export";
import { pagedStream } from "../paged-stream";
import { listCaptions } from "./store";

/** Rows read from D1 per query. */
export const CAPTION_EXPORT_PAGE_ROWS = 500;

export const CAPTION_CSV_COLUMNS = [
	"key",
	"etag",
	"text",
	"source",
	"job_id",
	"model",
	"prompt",
	"versions",
	"updated_at",
] as const;

async function* captionPages(db: D1Database, bucket: string, prefix: string, pageRows: number) {
	let after: string | null = null;
	for (;;) {
		const page = await listCaptions(db, bucket, prefix, after, pageRows);
		if (page.rows.length > 0) yield page.rows;
		if (page.nextAfter === null) return;
		after = page.nextAfter;
	}
}

/** The folder `metadata.jsonl` describes: the prefix up to its last `/`. */
const folderOf = (prefix: string) => prefix.slice(0, prefix.lastIndexOf("/") + 1);

function renderer(format: ExportFormat, prefix: string): (rows: CurrentCaptionRow[], first: boolean) => string {
	switch (format) {
		case "jsonl":
			return (rows) => rows.map((row) => `${JSON.stringify(toCaption(row))}\n`).join("");
		case "csv":
			return (rows, first) =>
				stringify(
					rows.map((r) => [
						r.key,
						r.etag,
						r.text,
						r.source,
						r.job_id,
						r.model,
						r.prompt,
						r.versions,
						iso(r.updated_at),
					]),
					{
						header: first,
						columns: [...CAPTION_CSV_COLUMNS],
						record_delimiter: "windows",
						cast: { string: spreadsheetSafe },
					},
				);
		case "hf": {
			const folder = folderOf(prefix);
			return (rows) =>
				rows.map((r) => `${JSON.stringify({ file_name: r.key.slice(folder.length), text: r.text })}\n`).join("");
		}
	}
}

/** Content-Type and file name of each format. */
export function captionExportHeaders(format: ExportFormat): Record<string, string> {
	const [type, file] =
		format === "csv"
			? ["text/csv; charset=utf-8; header=present", "captions.csv"]
			: ["application/x-ndjson; charset=utf-8", format === "hf" ? "metadata.jsonl" : "captions.jsonl"];
	return { "Content-Type": type, "Content-Disposition": `attachment; filename="${file}"` };
}

export function captionExportStream(
	db: D1Database,
	bucket: string,
	prefix: string,
	format: ExportFormat,
	pageRows = CAPTION_EXPORT_PAGE_ROWS,
): ReadableStream<Uint8Array> {
	const render = renderer(format, prefix);
	return pagedStream(captionPages(db, bucket, prefix, pageRows), render, format === "csv" ? render([], true) : "");
}
