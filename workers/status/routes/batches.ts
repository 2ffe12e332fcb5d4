/**
 * Batch endpoints (docs/batches.md): create a batch over a prefix or a list of keys (202; the listing goes
 * on in the background), list and get batches, cancel one, and stream its results as JSON Lines,
 * CSV or a Hugging Face `metadata.jsonl`. A key limited to prefix `p` creates and sees only batches
 * whose objects all start with `p`; anything else answers 404. Only a batch's creator (or the admin)
 * may cancel it.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { batchPaces, ceilingPerMinute, unmeasuredPace } from "../../../shared/batches/progress";
import { getBatchRow } from "../../../shared/batches/read";
import { Batch, BatchMetadata, type BatchRow, BatchStatus, toBatch } from "../../../shared/batches/schema";
import { batchEventMessage } from "../../../shared/batches/settle";
import { Recaption } from "../../../shared/captions/recaption";
import { decimalInt } from "../../../shared/decimal-int";
import { notifyEventHub } from "../../../shared/events/notify";
import { CallbackUrl, MaxTokens, Prompt } from "../../../shared/jobs/options";
import { JobStatus } from "../../../shared/jobs/schema";
import { batchPage } from "../../../shared/queue/batch-listing";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import { ApiError, ErrorBody, invalidParam, invalidParams, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { principalKeyId, scopePrefix } from "../auth/authorisation";
import { EXPORT_FORMATS, exportHeaders, exportStream, ResultsCursor } from "../batches/export";
import {
	batchCursor,
	batchKeysThatEnded,
	cancelBatch,
	createBatch,
	listBatches,
	MAX_FROM_BATCH_KEYS,
	startBatch,
} from "../batches/store";
import { IdempotencyHeaders, idempotent } from "../idempotency";
import { outputBodyFields, outputColumns } from "../output-options";
import { tooManyBatches } from "../quotas";
import { authenticated, errors, json } from "../responses";
import { readSettings } from "../settings";
import { ObjectKey, requireSafeWebhookUrl, validationHook } from "../validation";

export const MAX_BATCH_KEYS = MAX_FROM_BATCH_KEYS;

const FromBatchFilter = z
	.strictObject({
		status: z
			.array(JobStatus)
			.min(1)
			.default(["failed"])
			.meta({ description: "Job statuses to take (default: failed)." }),
		error_code: z
			.array(z.string().min(1).max(64))
			.min(1)
			.optional()
			.meta({ description: "Only jobs that ended with one of these error codes.", example: ["model_unavailable"] }),
	})
	.meta({
		id: "FromBatchFilter",
		description: "With `from_batch`: which of its objects to take, by how their job ended.",
	});

const CreateBatchBody = z
	.strictObject({
		prefix: z.string().max(1024).optional().meta({
			description: 'Caption every object whose key starts with this (`""`: the whole bucket). Give this or `keys`.',
			example: "datasets/holidays/",
		}),
		keys: z
			.array(ObjectKey)
			.min(1)
			.max(MAX_BATCH_KEYS)
			.optional()
			.meta({
				description: `Caption these objects (at most ${MAX_BATCH_KEYS}; repeats count once). Give this or \`prefix\`.`,
			}),
		prompt: Prompt.optional().meta({
			description: "For every job; default: each object's `prompt` metadata, else the default prompt.",
		}),
		max_tokens: MaxTokens.optional(),
		...outputBodyFields,
		callback_url: CallbackUrl.optional().meta({
			description:
				"Receives `batch.completed` or `batch.cancelled`, signed with the API key's `webhook_secret` (the admin's: WEBHOOK_SECRET).",
		}),
		metadata: BatchMetadata.optional(),
		skip_captioned: z.boolean().default(true).meta({
			description:
				"Skip (count as `skipped`, no model call) an object whose current version already has a succeeded job with the same prompt. Does not apply with `recaption`.",
		}),
		recaption: Recaption.optional().meta({
			description:
				"Re-caption: skip (count as `skipped`) objects whose current caption one of `unless_model` made, that is newer than `older_than`, or that a person wrote (unless `overwrite_human`); the others get a job.",
		}),
		from_batch: z.string().startsWith("bat_").optional().meta({
			description:
				"Make a keys batch of this batch's objects whose job ended as `only` says (a bulk retry). Give this, `prefix` or `keys`.",
			example: "bat_01JD2X6B8J3W4Q5R6S7T8V9W0X",
		}),
		only: FromBatchFilter.optional(),
		dry_run: z.boolean().default(false).meta({
			description:
				"Plan only: list and count (`total`, `skipped`) with no job and no model call, end in status `planned` with an `estimate`; `POST /v1/batches/{id}/start` runs it.",
		}),
		spillover: z.boolean().optional().meta({
			description:
				"When the first model's task type has no rate-limit slot free, caption with the chain's first model of another task type (Image-to-Text and Text Generation at once). Each job records its `model`; the batch counts them in `models`.",
		}),
	})
	.meta({ id: "CreateBatch" });

const BatchList = z
	.object({
		data: z.array(Batch),
		next_cursor: z.string().nullable().meta({
			description:
				"Pass as `cursor` for the next page; null on the last. A page may hold fewer items than `limit`, even none, and still have a cursor: a page reads at most a bounded number of rows, so keep paging until this is null.",
		}),
	})
	.meta({ id: "BatchList" });

const BatchIdParams = z.object({ id: z.string().min(1).meta({ example: "bat_01JD2X6B8J3W4Q5R6S7T8V9W0X" }) });

const createBatchRoute = createRoute({
	method: "post",
	path: "/v1/batches",
	operationId: "createBatch",
	summary: "Caption a prefix or a list of objects as one batch",
	description:
		"Answers at once with the batch (`listing`); its objects are listed in the background, 1,000 a page, and each gets a job. " +
		"A batch made with an API key counts against it: its jobs take the key's places in flight (`MAX_JOBS_IN_FLIGHT`; at the cap " +
		"the listing waits and goes on as jobs finish), and the key may have `MAX_OPEN_BATCHES_PER_KEY` batches listing or running " +
		"(`429 too_many_batches` beyond).",
	security: authenticated,
	middleware: idempotent,
	request: {
		headers: IdempotencyHeaders,
		body: { required: true, content: { "application/json": { schema: CreateBatchBody } } },
	},
	responses: { 202: json(Batch, "The batch, listing"), ...errors(400, 401, 404, 415, 422) },
});

const listBatchesRoute = createRoute({
	method: "get",
	path: "/v1/batches",
	operationId: "listBatches",
	summary: "List batches, newest first",
	description:
		"Every page walks at most 1,000 batches of the status (or all) newest first and keeps those in the caller's scope: a page may be short, even empty, with a `next_cursor`.",
	security: authenticated,
	request: {
		query: z.object({
			status: BatchStatus.optional(),
			limit: decimalInt(1, 100).default(20),
			cursor: z.string().optional().meta({ description: "`next_cursor` of the previous page." }),
		}),
	},
	responses: { 200: json(BatchList, "A page of batches"), ...errors(400, 401) },
});

const getBatchRoute = createRoute({
	method: "get",
	path: "/v1/batches/{id}",
	operationId: "getBatch",
	summary: "Get a batch and its counts",
	security: authenticated,
	request: { params: BatchIdParams },
	responses: { 200: json(Batch, "The batch"), ...errors(401, 404) },
});

const cancelBatchRoute = createRoute({
	method: "post",
	path: "/v1/batches/{id}/cancel",
	operationId: "cancelBatch",
	summary: "Cancel a batch (its creator or the admin)",
	description:
		"Listing stops and every queued job ends `cancelled` (no model call, no job webhook); running jobs finish. " +
		"`batch.cancelled` is sent once none is left running. Cancelling a cancelled batch answers it again; a completed one is 409. " +
		"Only the key that created the batch and the admin may cancel it: for any other key it does not exist (404), even one that can read it.",
	security: authenticated,
	request: { params: BatchIdParams },
	responses: {
		200: json(Batch, "The cancelled batch"),
		...errors(401, 409),
		404: json(ErrorBody, "Not found, outside the key's prefix, or created by another key (or by the admin)"),
	},
});

const startBatchRoute = createRoute({
	method: "post",
	path: "/v1/batches/{id}/start",
	operationId: "startBatch",
	summary: "Run a planned batch (its creator or the admin)",
	description:
		"A dry run's batch (status `planned`) is listed again from its first page, the skip rules checked again, and its objects get jobs: " +
		"its counts start from zero and move as any batch's. A batch that is not planned is 409 `batch_not_planned`. " +
		"A started batch counts among its key's open batches (`429 too_many_batches` beyond `MAX_OPEN_BATCHES_PER_KEY`).",
	security: authenticated,
	request: { params: BatchIdParams },
	responses: {
		202: json(Batch, "The batch, listing"),
		...errors(401, 409, 429),
		404: json(ErrorBody, "Not found, outside the key's prefix, or created by another key (or by the admin)"),
	},
});

/** The Batch JSON of a batch not yet measured, a dry run's estimate priced for the model jobs start with. */
const view = (env: StatusEnv, row: BatchRow) => toBatch(row, unmeasuredPace(row), readSettings(env).MODEL_CHAIN);

const stream = (description: string) => ({ schema: z.string().meta({ description }) });

const getBatchResultsRoute = createRoute({
	method: "get",
	path: "/v1/batches/{id}/results",
	operationId: "getBatchResults",
	summary: "Download a batch's results",
	description:
		"Streamed in key order. `jsonl`: one Job JSON per line. `csv`: RFC 4180 with a header row " +
		"(key, status, caption, error_code, error_message, model, prompt, completed_at). `hf`: a Hugging Face " +
		"`imagefolder` `metadata.jsonl` (`file_name` relative to the folder of the prefix, `text`) of the succeeded jobs. " +
		"Skipped objects appear as the earlier job that holds their caption. A given key that was not in the bucket " +
		'(no job) appears as `{"key", "status": "missing", "error": {"code": "object_not_found", "message"}}` in `jsonl`, ' +
		"and with status `missing` and error_code `object_not_found` in `csv`. " +
		"With `since`: only the rows that became results (succeeded, failed, cancelled, skipped, missing) after that cursor, " +
		"in the order they did, while the batch runs or after it ended; every response's `Next-Cursor` header is the cursor for the next call.",
	security: authenticated,
	request: {
		params: BatchIdParams,
		query: z.object({
			format: z.enum(EXPORT_FORMATS).default("jsonl"),
			since: ResultsCursor.optional().meta({
				description:
					"Only the rows that became results after this cursor, in completion order: the `Next-Cursor` header of an earlier response (`0`: from the first result).",
				example: "0",
			}),
		}),
	},
	responses: {
		200: {
			description: "The file (Content-Disposition: attachment)",
			headers: z.object({
				"Next-Cursor": z.string().meta({
					description:
						"Pass as `since` to get only the rows that become results after this response: re-polling with it never repeats or misses a row.",
					example: "1042",
				}),
			}),
			content: {
				"application/x-ndjson": stream("`jsonl`: Job JSON lines; `hf`: metadata.jsonl lines"),
				"text/csv": stream("`csv`"),
			},
		},
		...errors(400, 401, 404),
	},
});

/** Batch JSON with each batch's measured rate and ETA (shared/batches/progress.ts). */
async function withPace(env: StatusEnv, rows: BatchRow[]): Promise<Batch[]> {
	const settings = readSettings(env);
	const ceiling = (row: BatchRow) => ceilingPerMinute(settings.MODEL_CHAIN, settings.MODEL_RATE_LIMITS, row.language);
	const paces = await batchPaces(env.DB, rows, ceiling);
	return rows.map((row, i) => toBatch(row, paces[i], settings.MODEL_CHAIN));
}

const onePaced = async (env: StatusEnv, row: BatchRow) => (await withPace(env, [row]))[0] ?? view(env, row);

export const batchRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(createBatchRoute, async (c) => {
		const body = c.req.valid("json");
		const principal = c.get("principal");
		const scope = scopePrefix(principal);
		const given = (["prefix", "keys", "from_batch"] as const).filter((field) => body[field] !== undefined);
		if (given.length !== 1) {
			const message = "Give exactly one of prefix, keys and from_batch";
			throw invalidParams(["prefix", "keys", "from_batch"].map((field) => ({ field, in: "body" as const, message })));
		}
		if (body.only !== undefined && body.from_batch === undefined) {
			throw invalidParam("only", "body", "Only with from_batch");
		}
		const source = body.from_batch === undefined ? null : await getBatchRow(c.env.DB, body.from_batch, scope);
		if (body.from_batch !== undefined && source === null) throw notFound(`Batch ${body.from_batch}`);
		const keys =
			source !== null
				? await batchKeysThatEnded(c.env.DB, source.id, body.only ?? { status: ["failed"] })
				: body.keys === undefined
					? undefined
					: [...new Set(body.keys)];
		if (keys !== undefined && keys.length > MAX_BATCH_KEYS) {
			throw invalidParam("from_batch", "body", `More than ${MAX_BATCH_KEYS} objects match: narrow \`only\``);
		}
		if (keys !== undefined && keys.length === 0) {
			throw new ApiError(422, "no_objects", "No object of that batch ended so");
		}
		// A scoped key may only caption objects it can see; anything else does not exist for it.
		if (scope !== null) {
			if (body.prefix !== undefined && !body.prefix.startsWith(scope)) {
				throw new ApiError(404, "not_found", `No objects under prefix ${body.prefix} are visible to this key`);
			}
			const outside = keys?.find((key) => !key.startsWith(scope));
			if (outside !== undefined) throw notFound(`Object ${outside}`);
		}
		const settings = readSettings(c.env);
		if (body.callback_url !== undefined) {
			requireSafeWebhookUrl(settings.DEPLOY_MODE, body.callback_url, "callback_url", "body");
		}
		const outputs = outputColumns(body, { output: "output", in: "body" });
		const created = await createBatch(
			c.env.DB,
			{
				bucket: settings.BUCKET_NAME,
				source: keys === undefined ? { prefix: body.prefix ?? "" } : { keys },
				// A retry runs as its batch did, unless told otherwise.
				prompt: body.prompt ?? source?.prompt ?? null,
				maxTokens: body.max_tokens ?? source?.max_tokens ?? null,
				outputs: {
					output: outputs.output ?? source?.output ?? null,
					language: outputs.language ?? source?.language ?? null,
					writeBack: outputs.writeBack ?? source?.write_back ?? null,
				},
				callbackUrl: body.callback_url ?? null,
				metadata: body.metadata ?? {},
				skipCaptioned: body.skip_captioned && source === null,
				recaption: body.recaption ?? null,
				dryRun: body.dry_run,
				spillover: body.spillover === true,
				keyId: principalKeyId(principal),
			},
			settings.MAX_OPEN_BATCHES_PER_KEY,
		);
		if (created.kind === "too-many-open") throw tooManyBatches(settings.MAX_OPEN_BATCHES_PER_KEY);
		const row = created.batch;
		await sendOrLeaveToSweeper(
			c.env.BATCH_LISTING,
			{ body: batchPage(row.id, 0), contentType: "json" },
			{ queue: "batch-listing", batch_id: row.id },
		);
		return c.json(view(c.env, row), 202);
	})
	.openapi(listBatchesRoute, async (c) => {
		const q = c.req.valid("query");
		const after = q.cursor === undefined ? null : batchCursor.decode(q.cursor);
		if (after === null && q.cursor !== undefined) {
			throw invalidParam("cursor", "query", "Not a cursor returned by this API");
		}
		const page = await listBatches(
			c.env.DB,
			{ status: q.status, scope: scopePrefix(c.get("principal")) },
			q.limit,
			after,
		);
		return c.json({ data: await withPace(c.env, page.rows), next_cursor: page.nextCursor }, 200);
	})
	.openapi(getBatchRoute, async (c) => {
		const { id } = c.req.valid("param");
		const row = await getBatchRow(c.env.DB, id, scopePrefix(c.get("principal")));
		if (!row) throw notFound(`Batch ${id}`);
		return c.json(await onePaced(c.env, row), 200);
	})
	.openapi(cancelBatchRoute, async (c) => {
		const { id } = c.req.valid("param");
		const principal = c.get("principal");
		const result = await cancelBatch(c.env.DB, id, {
			scope: scopePrefix(principal),
			keyId: principalKeyId(principal),
		});
		switch (result.kind) {
			case "missing":
				throw notFound(`Batch ${id}`);
			case "completed":
				throw new ApiError(409, "batch_completed", `Batch ${id} has completed`);
			case "already-cancelled":
				return c.json(await onePaced(c.env, result.batch), 200);
			case "cancelled":
				if (result.settled) {
					await notifyEventHub(c.env.EVENT_HUB, [result.settled.eventId]);
					await sendOrLeaveToSweeper(
						c.env.WEBHOOK_DELIVERIES,
						{ body: batchEventMessage(result.settled), contentType: "json" },
						{ queue: "webhook-deliveries", event_id: result.settled.eventId },
					);
				}
				return c.json(await onePaced(c.env, result.batch), 200);
		}
	})
	.openapi(startBatchRoute, async (c) => {
		const { id } = c.req.valid("param");
		const principal = c.get("principal");
		const settings = readSettings(c.env);
		const result = await startBatch(
			c.env.DB,
			id,
			{ scope: scopePrefix(principal), keyId: principalKeyId(principal) },
			settings.MAX_OPEN_BATCHES_PER_KEY,
		);
		switch (result.kind) {
			case "missing":
				throw notFound(`Batch ${id}`);
			case "not-planned":
				throw new ApiError(409, "batch_not_planned", `Batch ${id} is ${result.batch.status}, not planned`);
			case "too-many-open":
				throw tooManyBatches(settings.MAX_OPEN_BATCHES_PER_KEY);
		}
		await sendOrLeaveToSweeper(
			c.env.BATCH_LISTING,
			{ body: batchPage(id, 0), contentType: "json" },
			{ queue: "batch-listing", batch_id: id },
		);
		return c.json(view(c.env, result.batch), 202);
	})
	.openapi(getBatchResultsRoute, async (c) => {
		const { id } = c.req.valid("param");
		const { format, since } = c.req.valid("query");
		const row = await getBatchRow(c.env.DB, id, scopePrefix(c.get("principal")));
		if (!row) throw notFound(`Batch ${id}`);
		if (since !== undefined && since > row.finished_seq) {
			throw invalidParam(
				"since",
				"query",
				"Not a cursor of this batch: pass the Next-Cursor header of an earlier response",
			);
		}
		const range = since === undefined ? null : { since, upto: row.finished_seq };
		return new Response(exportStream(c.env.DB, row, format, range), {
			status: 200,
			headers: { ...exportHeaders(format, row), "Next-Cursor": String(row.finished_seq) },
		});
	});
