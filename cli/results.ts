/**
 * `--out` files of `r2c upload`: JSON Lines (one Job JSON per line) or CSV (RFC 4180, through
 * csv-stringify) with the columns of the batch results export, so both files read the same way.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Job } from "../client/index.ts";
import { CSV_COLUMNS, spreadsheetSafe } from "../shared/jobs/csv-columns.ts";
import { CliError } from "./errors.ts";

export type ResultsFormat = "jsonl" | "csv";

/** The format `--out` asks for by its extension; checked before anything is uploaded. */
export function resultsFormat(file: string): ResultsFormat {
	const ext = path.extname(file).toLowerCase();
	if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
	if (ext === ".csv") return "csv";
	throw new CliError(`--out ${file}: the file name must end in .jsonl or .csv`);
}

export function csvRow(job: Job): (string | null)[] {
	return [
		job.key,
		job.status,
		job.caption,
		job.error?.code ?? null,
		job.error?.message ?? null,
		job.model,
		job.prompt,
		job.completed_at,
	];
}

export async function writeResults(file: string, jobs: Job[]): Promise<void> {
	let text: string;
	if (resultsFormat(file) === "jsonl") text = jobs.map((job) => `${JSON.stringify(job)}\n`).join("");
	else {
		// Loaded only for a CSV file: every other `r2c upload` starts without it.
		const { stringify } = await import("csv-stringify/sync");
		text = stringify(jobs.map(csvRow), { header: true, columns: [...CSV_COLUMNS], cast: { string: spreadsheetSafe } });
	}
	await writeFile(file, text);
}
