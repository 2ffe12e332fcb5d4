/**
 * The Job resource: the zod schema is the single source of truth for the API's Job JSON,
 * webhook payloads and the mapping from D1 rows (docs/data.md).
 */
import { z } from "zod";
import { iso } from "../iso";
import { OutputKind, OutputText, outputKind, WRITE_BACK_TARGETS, WriteBackText } from "../outputs/spec";

/** `cancelled` is terminal too: a queued job of a cancelled batch (docs/jobs.md). */
export const JOB_STATUSES = ["queued", "processing", "succeeded", "failed", "cancelled"] as const;
export const JobStatus = z.enum(JOB_STATUSES).meta({ id: "JobStatus" });
export type JobStatus = z.infer<typeof JobStatus>;

/** Stable codes of a failed job (`error.code`); documented in docs/errors.md. */
export const JOB_ERROR_CODES = [
	"object_not_found",
	"empty_object",
	"unsupported_media_type",
	"invalid_image",
	"image_too_large",
	"images_account_limit",
	"invalid_options",
	"model_unavailable",
	"model_error",
	"invalid_output",
	"retries_exhausted",
	"dead_lettered",
] as const;
export const JobErrorCode = z.enum(JOB_ERROR_CODES).meta({ id: "JobErrorCode" });
export type JobErrorCode = z.infer<typeof JobErrorCode>;

export const JobError = z.object({ code: JobErrorCode, message: z.string() }).meta({ id: "JobError" });

const isoTime = z.iso.datetime();

export const WRITE_BACK_STATUSES = ["pending", "written", "skipped", "failed", "not_attempted"] as const;

export const JobWriteBack = z
	.object({
		target: z.enum(WRITE_BACK_TARGETS),
		status: z.enum(WRITE_BACK_STATUSES).meta({
			description:
				"`pending` until the job succeeds and the write is done; `written`; `skipped` (mode `skip` found a sidecar or caption already there); `failed` (see `error`); `not_attempted` (the job did not succeed).",
		}),
		error: z.string().nullable(),
	})
	.meta({ id: "JobWriteBack" });

/** A result: the text for text kinds, the array for `tags`, the JSON value for `json_schema`. */
const JobResult = z
	.union([
		z.string(),
		z.array(z.string()),
		z.record(z.string(), z.unknown()),
		z.array(z.unknown()),
		z.number(),
		z.boolean(),
	])
	.nullable()
	.meta({
		id: "JobResult",
		description:
			"The validated result: a string (caption, alt_text, title), an array (tags) or a JSON value (json_schema); null until the job succeeds.",
	});

const tokens = z.number().int().nonnegative();

export const JobUsage = z
	.object({
		input_tokens: tokens.meta({ description: "Input tokens (the prompt and the image) as the model reported them." }),
		output_tokens: tokens.meta({ description: "Output tokens as the model reported them." }),
	})
	.meta({ id: "JobUsage" });

export const Job = z
	.object({
		id: z.string().meta({ example: "job_01JD2X6B8J3W4Q5R6S7T8V9W0X" }),
		status: JobStatus,
		batch_id: z
			.string()
			.nullable()
			.meta({ description: "The batch that made the job; null for uploads and `POST /v1/jobs`." }),
		bucket: z.string(),
		key: z.string(),
		etag: z.string(),
		size: z.number().int().nullable(),
		content_type: z.string().nullable(),
		prompt: z.string().nullable(),
		max_tokens: z.number().int().nullable(),
		model: z.string().nullable(),
		caption: z
			.string()
			.nullable()
			.meta({ description: "The result as text: tags joined with `, `, a JSON result as its JSON text." }),
		output: OutputKind,
		language: z
			.string()
			.nullable()
			.meta({ description: "BCP 47 tag the result is written in; null: the default (English)." }),
		result: JobResult,
		write_back: JobWriteBack.nullable(),
		error: JobError.nullable(),
		attempts: z.number().int(),
		created_at: isoTime,
		started_at: isoTime.nullable(),
		completed_at: isoTime.nullable(),
		metrics: z.object({
			queue_ms: z.number().int().nullable(),
			inference_ms: z.number().int().nullable(),
			total_ms: z.number().int().nullable(),
		}),
		usage: JobUsage.nullable().meta({
			description:
				"The tokens the job's model calls reported, summed over every call made for it that answered (a repair's, an earlier attempt's; a failed call reports nothing); null while none reported any, and always for models that report none (llava-1.5, llama-3.2-vision).",
		}),
	})
	.meta({ id: "Job" });
export type Job = z.infer<typeof Job>;

/** A row of the `jobs` table, as D1 returns it. */
export const JobRow = z.object({
	id: z.string(),
	source: z.enum(["notification", "api", "batch"]),
	batch_id: z.string().nullable(),
	bucket: z.string(),
	key: z.string(),
	etag: z.string(),
	size: z.number().nullable(),
	content_type: z.string().nullable(),
	prompt: z.string().nullable(),
	max_tokens: z.number().nullable(),
	callback_url: z.string().nullable(),
	status: JobStatus,
	model: z.string().nullable(),
	caption: z.string().nullable(),
	error_code: JobErrorCode.nullable(),
	error_message: z.string().nullable(),
	attempts: z.number(),
	lease_token: z.string().nullable(),
	lease_expires_at: z.number().nullable(),
	created_at: z.number(),
	updated_at: z.number(),
	started_at: z.number().nullable(),
	completed_at: z.number().nullable(),
	queue_ms: z.number().nullable(),
	inference_ms: z.number().nullable(),
	total_ms: z.number().nullable(),
	/** The API key that asked for the job (upload, POST /v1/jobs, batch); null for the admin and bucket uploads. */
	key_id: z.string().nullable(),
	output: z.string().nullable(),
	language: z.string().nullable(),
	result: z.string().nullable(),
	write_back: z.string().nullable(),
	write_back_status: z.enum(WRITE_BACK_STATUSES).nullable(),
	write_back_error: z.string().nullable(),
	write_back_lease: z.number().nullable(),
	/** Tokens the job's model calls reported, summed (NULL: none reported any). */
	input_tokens: z.number().nullable(),
	output_tokens: z.number().nullable(),
	/** What tells apart uploads of the same bytes with other caption metadata ('' for none; shared/jobs/options.ts). */
	options_key: z.string(),
	/** The notification job this one was made in the place of (shared/jobs/written-again.ts); null for others. */
	replaces: z.string().nullable(),
});
export type JobRow = z.infer<typeof JobRow>;

/** Renders a D1 row as the public Job JSON. */
export function toJob(row: JobRow): Job {
	return {
		id: row.id,
		status: row.status,
		batch_id: row.batch_id,
		bucket: row.bucket,
		key: row.key,
		etag: row.etag,
		size: row.size,
		content_type: row.content_type,
		prompt: row.prompt,
		max_tokens: row.max_tokens,
		model: row.model,
		caption: row.caption,
		output: row.output === null ? "caption" : outputKindOf(row.output),
		language: row.language,
		result: resultOf(row),
		write_back: writeBackOf(row),
		error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? "" },
		attempts: row.attempts,
		created_at: new Date(row.created_at).toISOString(),
		started_at: iso(row.started_at),
		completed_at: iso(row.completed_at),
		metrics: { queue_ms: row.queue_ms, inference_ms: row.inference_ms, total_ms: row.total_ms },
		usage:
			row.input_tokens === null && row.output_tokens === null
				? null
				: { input_tokens: row.input_tokens ?? 0, output_tokens: row.output_tokens ?? 0 },
	};
}

function outputKindOf(text: string): OutputKind {
	const parsed = OutputText.safeParse(text);
	return parsed.success ? outputKind(parsed.data) : "caption";
}

/** Rows from before results were stored have the caption alone: that is their result. */
function resultOf(row: JobRow): z.infer<typeof JobResult> {
	if (row.result === null) return row.status === "succeeded" ? row.caption : null;
	return JSON.parse(row.result);
}

function writeBackOf(row: JobRow): z.infer<typeof JobWriteBack> | null {
	if (row.write_back === null) return null;
	const parsed = WriteBackText.safeParse(row.write_back);
	if (!parsed.success) return null;
	const ended = row.status === "failed" || row.status === "cancelled";
	const status = row.write_back_status ?? (ended ? "not_attempted" : "pending");
	return { target: parsed.data.target, status, error: row.write_back_error };
}
