/** `r2c jobs list` and `r2c jobs get`: the jobs API, as a table or (`--json`) as the API's JSON. */
import { type Job, type JobStatus, ok } from "../client/index.ts";
import { type Context, printJson } from "./context.ts";

export interface ListOptions {
	status?: JobStatus;
	prefix?: string;
	key?: string;
	limit: number;
	cursor?: string;
}

const oneLine = (text: string, max: number) => {
	const flat = text.replace(/\s+/g, " ").trim();
	return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** The caption, the error or what the job waits for, in one line. */
export function jobSummary(job: Job, max = 80): string {
	if (job.status === "succeeded") return oneLine(job.caption ?? "", max);
	if (job.status === "failed") return oneLine(`${job.error?.code}: ${job.error?.message}`, max);
	return "";
}

function table(rows: string[][]): string {
	const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
	return rows
		.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "))
		.join("\n");
}

export async function listJobs(ctx: Context, options: ListOptions): Promise<void> {
	const query = {
		status: options.status,
		prefix: options.prefix,
		key: options.key,
		limit: options.limit,
		cursor: options.cursor,
	};
	const page = await ok(ctx.api.GET("/v1/jobs", { params: { query } }));
	if (ctx.json) return printJson(page);
	if (page.data.length === 0) {
		console.log("No jobs.");
		return;
	}
	const header = ["ID", "STATUS", "KEY", "CAPTION / ERROR"];
	console.log(table([header, ...page.data.map((j) => [j.id, j.status, j.key, jobSummary(j)])]));
	if (page.next_cursor) console.log(`\nMore: add --cursor ${page.next_cursor}`);
}

export async function getJob(ctx: Context, id: string): Promise<void> {
	const job = await ok(ctx.api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
	if (ctx.json) return printJson(job);
	const ms = (value: number | null) => (value === null ? "–" : `${value} ms`);
	const fields: [string, string | number | null][] = [
		["id", job.id],
		["status", job.status],
		["object", `${job.bucket}/${job.key}`],
		["etag", job.etag],
		["size", job.size],
		["type", job.content_type],
		["prompt", job.prompt],
		["max_tokens", job.max_tokens],
		["model", job.model],
		["caption", job.caption],
		["error", job.error ? `${job.error.code}: ${job.error.message}` : null],
		["attempts", job.attempts],
		["created_at", job.created_at],
		["started_at", job.started_at],
		["completed_at", job.completed_at],
		[
			"metrics",
			`queue ${ms(job.metrics.queue_ms)}, inference ${ms(job.metrics.inference_ms)}, total ${ms(job.metrics.total_ms)}`,
		],
		// null: no call reported tokens (some models never do).
		["usage", job.usage && `${job.usage.input_tokens} input, ${job.usage.output_tokens} output tokens`],
	];
	console.log(table(fields.map(([name, value]) => [name, value === null ? "–" : String(value)])));
}
