/**
 * The one way tests put job rows into D1 directly (for listings, stats, leases and sweeps): every
 * column is given or defaulted here, and the rows come back as D1 stored them, parsed with JobRow.
 */
import { env } from "cloudflare:workers";
import { z } from "zod";
import { batchRows } from "../../shared/d1-rows";
import { newJobId } from "../../shared/ids";
import { JobRow } from "../../shared/jobs/schema";

/** A job row to insert: the key, and whatever columns differ from a fresh queued API job. */
export type JobRowInput = Partial<JobRow> & Pick<JobRow, "key">;

/** A complete row: a queued 'api' job of `images/<key>` created now, with what `input` changes. */
export function jobRow(input: JobRowInput): JobRow {
	const createdAt = input.created_at ?? Date.now();
	return JobRow.parse({
		id: newJobId(createdAt),
		source: "api",
		batch_id: null,
		bucket: "images",
		etag: "etag",
		size: null,
		content_type: null,
		prompt: null,
		max_tokens: null,
		callback_url: null,
		status: "queued",
		model: null,
		caption: null,
		error_code: null,
		error_message: null,
		attempts: 0,
		lease_token: null,
		lease_expires_at: null,
		created_at: createdAt,
		updated_at: createdAt,
		started_at: null,
		completed_at: null,
		queue_ms: null,
		inference_ms: null,
		total_ms: null,
		key_id: null,
		output: null,
		language: null,
		result: null,
		write_back: null,
		write_back_status: null,
		write_back_error: null,
		write_back_lease: null,
		input_tokens: null,
		output_tokens: null,
		options_key: "",
		replaces: null,
		...input,
	} satisfies JobRow);
}

const COLUMNS = JobRow.keyof().options;

/**
 * A job put into a batch is counted in it, as the batch's listing counts the jobs it writes (the
 * status triggers then move the counts as the job goes on): the batches' counts stay those of their
 * rows, never below zero, for every test that reads other files' batches in shared storage.
 */
function batchCount(row: JobRow): D1PreparedStatement[] {
	if (row.batch_id === null) return [];
	const status = z.enum(["queued", "processing", "succeeded", "failed", "cancelled"]).parse(row.status);
	return [
		env.DB.prepare(`UPDATE batches SET total = total + 1, ${status} = ${status} + 1 WHERE id = ?`).bind(row.batch_id),
	];
}
/** Statements per D1 batch when seeding many rows. */
const CHUNK = 500;

/** Inserts the rows (in D1 batches) and returns them as stored, in the same order. */
export async function insertJobs(inputs: JobRowInput[]): Promise<JobRow[]> {
	const insert = env.DB.prepare(
		`INSERT INTO jobs (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((_, i) => `?${i + 1}`).join(", ")}) RETURNING *`,
	);
	const stored: JobRow[] = [];
	for (let i = 0; i < inputs.length; i += CHUNK) {
		const statements = inputs.slice(i, i + CHUNK).flatMap((input) => {
			const row = jobRow(input);
			return [insert.bind(...COLUMNS.map((column) => row[column])), ...batchCount(row)];
		});
		for (const result of await env.DB.batch(statements)) stored.push(...batchRows(result, JobRow));
	}
	return stored;
}

export async function insertJob(input: JobRowInput): Promise<JobRow> {
	const [row] = await insertJobs([input]);
	if (!row) throw new Error(`the job row for ${input.key} was not inserted`);
	return row;
}
