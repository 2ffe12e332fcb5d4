/**
 * The Batch resource (docs/batches.md): a prefix listed in the background, or a list of keys, captioned as
 * one. The zod schema is the source of truth for the API's Batch JSON, the `batch.*` webhook
 * payloads and the mapping from D1 rows.
 */
import { z } from "zod";
import { Recaption } from "../captions/recaption";
import { iso } from "../iso";
import { OutputKind, OutputText, outputKind, WRITE_BACK_TARGETS, WriteBackText } from "../outputs/spec";
import { Estimate, type EstimateModel, estimate, estimateModel } from "./estimate";
import { type BatchPace, unmeasuredPace } from "./progress";

export const BATCH_STATUSES = ["planned", "listing", "running", "completed", "cancelled"] as const;
export const BatchStatus = z.enum(BATCH_STATUSES).meta({
	id: "BatchStatus",
	description:
		"`planned`: a dry run, listed and counted with no job made, until `POST /v1/batches/{id}/start`; " +
		"`listing`: objects are still being listed (counts grow); `running`: every object has its job; " +
		"`completed` and `cancelled` are final.",
});
export type BatchStatus = z.infer<typeof BatchStatus>;

/** Up to 16 string pairs of the caller's own, returned as given. */
export const MAX_METADATA_PAIRS = 16;
export const BatchMetadata = z
	.record(z.string().min(1).max(64), z.string().max(512))
	.refine((m) => Object.keys(m).length <= MAX_METADATA_PAIRS, `At most ${MAX_METADATA_PAIRS} pairs`)
	.meta({ id: "BatchMetadata", example: { dataset: "holidays-2026", owner: "ml-team" } });
export type BatchMetadata = z.infer<typeof BatchMetadata>;

const count = z.number().int().nonnegative();

export const BatchCounts = z
	.object({
		total: count.meta({ description: "Objects in the batch so far: every other count added up." }),
		queued: count,
		processing: count,
		succeeded: count,
		failed: count,
		cancelled: count,
		skipped: count.meta({
			description:
				"Objects left alone: with `skip_captioned`, those whose current version already had a succeeded job with the same prompt; with `recaption`, those whose current caption its rules keep.",
		}),
		missing: count.meta({
			description:
				"Given keys that were not in the bucket: no job, no event, no webhook; listed in the results with `error_code` `object_not_found`.",
		}),
	})
	.meta({ id: "BatchCounts" });
export type BatchCounts = z.infer<typeof BatchCounts>;

const isoTime = z.iso.datetime();

export const BatchUsage = z
	.object({
		input_tokens: count.meta({ description: "The input tokens of the batch's jobs, summed (each job's `usage`)." }),
		output_tokens: count.meta({ description: "The output tokens of the batch's jobs, summed." }),
		jobs_with_usage: count.meta({
			description: "Jobs whose model calls reported tokens; the others (models that report none) are not in the sums.",
		}),
	})
	.meta({
		id: "BatchUsage",
		description:
			"What the batch's model calls reported so far, kept as its jobs finish: compare it with `estimate` (a started dry run keeps its plan's).",
	});
export type BatchUsage = z.infer<typeof BatchUsage>;

export const Batch = z
	.object({
		id: z.string().meta({ example: "bat_01JD2X6B8J3W4Q5R6S7T8V9W0X" }),
		status: BatchStatus,
		prefix: z.string().nullable().meta({ description: "The listed prefix; null for a keys batch." }),
		key_count: z.number().int().nullable().meta({ description: "Distinct keys given; null for a prefix batch." }),
		prompt: z.string().nullable().meta({ description: "null: each object's `prompt` metadata, else the default." }),
		max_tokens: z.number().int().nullable(),
		output: OutputKind.nullable().meta({
			description: "null: each object's `output` metadata, else its preset, else `caption`.",
		}),
		language: z.string().nullable(),
		write_back: z.enum(WRITE_BACK_TARGETS).nullable(),
		metadata: z.record(z.string(), z.string()),
		recaption: Recaption.nullable().meta({ description: "The re-caption rules it was made with; null: none." }),
		estimate: Estimate.nullable().meta({
			description:
				"A dry run's plan (while `planned` or listing as one, and after it was started, to compare with `usage`): what its jobs would take; null for a batch that was never a dry run.",
		}),
		counts: BatchCounts,
		usage: BatchUsage,
		spillover: z.boolean().meta({
			description:
				"When its first model's task type has no slot free, a caption of the batch goes to the chain's first model of another task type.",
		}),
		models: z.record(z.string(), z.number().int().nonnegative()).meta({
			description: "Succeeded jobs of the batch by the model that captioned them.",
			example: { "@cf/moondream/moondream3.1-9B-A2B": 700, "@cf/meta/llama-4-scout-17b-16e-instruct": 300 },
		}),
		created_at: isoTime,
		listed_at: isoTime.nullable().meta({ description: "When the last object got its job (status `running`)." }),
		completed_at: isoTime.nullable().meta({
			description: "When the batch was completed or cancelled with none of its jobs still queued or running.",
		}),
		rate_per_minute: z.number().nonnegative().nullable().meta({
			description:
				"Jobs that succeeded or failed in the last minute (or since the batch was created, if it is younger), per minute; null until one has, and once the batch has ended.",
			example: 412.5,
		}),
		eta_seconds: z.number().int().nonnegative().nullable().meta({
			description:
				"Seconds until the batch ends at `rate_per_minute`, never less than the model rate limit allows; 0 once it ended; null until known (no rate yet, nothing finished in the last minute, or a prefix still listing).",
			example: 95,
		}),
	})
	.meta({ id: "Batch" });
export type Batch = z.infer<typeof Batch>;

/** A row of the `batches` table, as D1 returns it. */
export const BatchRow = z.object({
	id: z.string(),
	status: BatchStatus,
	bucket: z.string(),
	prefix: z.string().nullable(),
	key_count: z.number().nullable(),
	key_prefix: z.string(),
	prompt: z.string().nullable(),
	max_tokens: z.number().nullable(),
	callback_url: z.string().nullable(),
	output: z.string().nullable(),
	language: z.string().nullable(),
	write_back: z.string().nullable(),
	/** JSON object of string pairs. */
	metadata: z.string(),
	skip_captioned: z.union([z.literal(0), z.literal(1)]),
	/** JSON of the Recaption rules, or NULL. */
	recaption: z.string().nullable(),
	overwrite_human: z.union([z.literal(0), z.literal(1)]),
	/** 1 while a dry run lists and plans (no job is made). */
	dry_run: z.union([z.literal(0), z.literal(1)]),
	/** A dry run's objects that would get a job. */
	planned: z.number(),
	key_id: z.string().nullable(),
	pages_listed: z.number(),
	list_cursor: z.string().nullable(),
	unsent_page: z.number().nullable(),
	/** JSON array of job ids. */
	unsent: z.string().nullable(),
	total: z.number(),
	queued: z.number(),
	processing: z.number(),
	succeeded: z.number(),
	failed: z.number(),
	cancelled: z.number(),
	skipped: z.number(),
	missing: z.number(),
	/** Results so far, numbered in the order they became results (migrations/0022_live_results.sql). */
	finished_seq: z.number(),
	spillover: z.union([z.literal(0), z.literal(1)]),
	/** JSON object: model id -> succeeded jobs. */
	models: z.string(),
	/** Tokens its jobs reported, summed, and the jobs that reported any (migrations/0025_usage.sql). */
	input_tokens: z.number(),
	output_tokens: z.number(),
	jobs_with_usage: z.number(),
	/** When a dry run was started; NULL otherwise. */
	started_at: z.number().nullable(),
	created_at: z.number(),
	updated_at: z.number(),
	listed_at: z.number().nullable(),
	completed_at: z.number().nullable(),
});
export type BatchRow = z.infer<typeof BatchRow>;

/** A batch's re-caption rules, or null. */
export const recaptionOf = (row: BatchRow): Recaption | null =>
	row.recaption === null ? null : Recaption.parse(JSON.parse(row.recaption));

/**
 * Renders a D1 row as the public Batch JSON, with its measured pace (shared/batches/progress.ts)
 * when there is one; `chain` (MODEL_CHAIN) prices a dry run's plan on its first model that writes
 * the batch's language, and the estimate is null without it.
 */
export function toBatch(row: BatchRow, pace: BatchPace = unmeasuredPace(row), chain?: readonly EstimateModel[]): Batch {
	const model = chain && estimateModel(chain, row.language);
	return {
		id: row.id,
		status: row.status,
		prefix: row.prefix,
		key_count: row.key_count,
		prompt: row.prompt,
		max_tokens: row.max_tokens,
		output: row.output === null ? null : outputKind(OutputText.parse(row.output)),
		language: row.language,
		write_back: row.write_back === null ? null : WriteBackText.parse(row.write_back).target,
		metadata: z.record(z.string(), z.string()).parse(JSON.parse(row.metadata)),
		recaption: recaptionOf(row),
		estimate:
			(row.dry_run === 1 || row.started_at !== null) && model !== undefined ? estimate(model, row.planned) : null,
		counts: {
			total: row.total,
			queued: row.queued,
			processing: row.processing,
			succeeded: row.succeeded,
			failed: row.failed,
			cancelled: row.cancelled,
			skipped: row.skipped,
			missing: row.missing,
		},
		usage: { input_tokens: row.input_tokens, output_tokens: row.output_tokens, jobs_with_usage: row.jobs_with_usage },
		spillover: row.spillover === 1,
		models: z.record(z.string(), z.number()).parse(JSON.parse(row.models)),
		created_at: new Date(row.created_at).toISOString(),
		listed_at: iso(row.listed_at),
		completed_at: iso(row.completed_at),
		rate_per_minute: pace.rate_per_minute,
		eta_seconds: pace.eta_seconds,
	};
}
