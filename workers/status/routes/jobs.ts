/**
 * Job endpoints: one job, the filtered newest-first list with its keyset cursor, and captioning an
 * object already in the bucket (again) with `POST /v1/jobs`. Scoped keys see only their prefix.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { decimalInt } from "../../../shared/decimal-int";
import { CallbackUrl, MaxTokens, Prompt } from "../../../shared/jobs/options";
import { Job, JobStatus, toJob } from "../../../shared/jobs/schema";
import { getJobRow } from "../../../shared/jobs/store";
import type { CaptionRequest } from "../../../shared/queue/caption-jobs";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import { invalidParam, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope, principalKeyId, scopePrefix } from "../auth/authorisation";
import { IdempotencyHeaders, idempotent } from "../idempotency";
import { insertApiJob } from "../jobs/create";
import { jobCursor, listJobs } from "../jobs/list";
import { outputBodyFields, outputColumns } from "../output-options";
import { requireJobCapacity } from "../quotas";
import { authenticated, errors, json } from "../responses";
import { readSettings } from "../settings";
import { ImageKey, ObjectKey, requireSafeWebhookUrl, validationHook } from "../validation";

const JobList = z
	.object({
		data: z.array(Job),
		next_cursor: z.string().nullable().meta({
			description:
				"Pass as `cursor` for the next page; null on the last. A page may hold fewer items than `limit`, even none, and still have a cursor: a page reads at most a bounded number of rows, so keep paging until this is null.",
		}),
	})
	.meta({ id: "JobList" });

const isoDate = z.iso.datetime({ offset: true }).meta({ example: "2026-11-24T10:00:00Z" });

const ListJobsQuery = z.object({
	status: JobStatus.optional(),
	key: ObjectKey.optional().meta({ description: "Exact object key." }),
	prefix: z.string().min(1).max(1024).optional().meta({ description: "Object-key prefix, e.g. `photos/`." }),
	batch_id: z
		.string()
		.min(1)
		.optional()
		.meta({ description: "Only the jobs of this batch.", example: "bat_01JD2X6B8J3W4Q5R6S7T8V9W0X" }),
	created_after: isoDate.optional().meta({ description: "Only jobs created strictly after this time." }),
	created_before: isoDate.optional().meta({ description: "Only jobs created strictly before this time." }),
	limit: decimalInt(1, 100).default(20),
	cursor: z.string().optional().meta({ description: "`next_cursor` of the previous page." }),
});

const JobIdParams = z.object({ id: z.string().min(1).meta({ example: "job_01JD2X6B8J3W4Q5R6S7T8V9W0X" }) });

/** `POST /v1/jobs`: the object and the options that override its custom metadata for this job. */
export const CreateJobBody = z
	.strictObject({
		key: ImageKey,
		prompt: Prompt.optional(),
		max_tokens: MaxTokens.optional(),
		callback_url: CallbackUrl.optional(),
		...outputBodyFields,
	})
	.meta({ id: "CreateJob" });

const getJobRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}",
	operationId: "getJob",
	summary: "Get a job",
	security: authenticated,
	request: { params: JobIdParams },
	responses: { 200: json(Job, "The job"), ...errors(401, 404) },
});

const listJobsRoute = createRoute({
	method: "get",
	path: "/v1/jobs",
	operationId: "listJobs",
	summary: "List jobs, newest first",
	description:
		"Every page reads a bounded number of rows whatever the filters: the filter an index serves (key, batch_id, status or none, with the time range) leads a walk of at most 1,000 jobs and the others are checked on those; a page that stops early is short (even empty) with a `next_cursor`.",
	security: authenticated,
	request: { query: ListJobsQuery },
	responses: { 200: json(JobList, "A page of jobs"), ...errors(400, 401) },
});

const createJobRoute = createRoute({
	method: "post",
	path: "/v1/jobs",
	operationId: "createJob",
	summary: "Caption (again) an object already in the bucket",
	description: "Makes a new job every time, distinct from the object version's upload job.",
	security: authenticated,
	middleware: idempotent,
	request: {
		headers: IdempotencyHeaders,
		body: { required: true, content: { "application/json": { schema: CreateJobBody } } },
	},
	responses: { 202: json(Job, "The queued job"), ...errors(400, 401, 404, 415) },
});

const parseTime = (value: string | undefined) => (value === undefined ? undefined : Date.parse(value));

export const jobRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(getJobRoute, async (c) => {
		const { id } = c.req.valid("param");
		const row = await getJobRow(c.env.DB, id);
		if (!row || !inScope(c.get("principal"), row.key)) throw notFound(`Job ${id}`);
		return c.json(toJob(row), 200);
	})
	.openapi(listJobsRoute, async (c) => {
		const q = c.req.valid("query");
		const principal = c.get("principal");
		const after = q.cursor === undefined ? null : jobCursor.decode(q.cursor);
		if (after === null && q.cursor !== undefined) {
			throw invalidParam("cursor", "query", "Not a cursor returned by this API");
		}
		const scope = scopePrefix(principal);
		const page = await listJobs(
			c.env.DB,
			{
				status: q.status,
				key: q.key,
				batchId: q.batch_id,
				prefixes: [q.prefix, scope].filter((p): p is string => p !== undefined && p !== null),
				createdAfter: parseTime(q.created_after),
				createdBefore: parseTime(q.created_before),
			},
			q.limit,
			after,
		);
		return c.json({ data: page.rows.map(toJob), next_cursor: page.nextCursor }, 200);
	})
	.openapi(createJobRoute, async (c) => {
		const body = c.req.valid("json");
		const settings = readSettings(c.env);
		const principal = c.get("principal");
		if (!inScope(principal, body.key)) throw notFound(`Object ${body.key}`);
		const outputs = outputColumns(body, { output: "output", in: "body" });
		if (body.callback_url !== undefined) {
			requireSafeWebhookUrl(settings.DEPLOY_MODE, body.callback_url, "callback_url", "body");
		}
		const object = await c.env.BUCKET.head(body.key);
		if (!object) throw notFound(`Object ${body.key}`);
		await requireJobCapacity(c.env, principal);
		const row = await insertApiJob(c.env.DB, {
			bucket: settings.BUCKET_NAME,
			key: body.key,
			etag: object.etag,
			size: object.size,
			contentType: null,
			prompt: body.prompt ?? null,
			maxTokens: body.max_tokens ?? null,
			callbackUrl: body.callback_url ?? null,
			keyId: principalKeyId(c.get("principal")),
			outputs,
		});
		const request: CaptionRequest = { kind: "caption-job", job_id: row.id };
		await sendOrLeaveToSweeper(c.env.CAPTION_JOBS, { body: request }, { queue: "caption-jobs", job_id: row.id });
		return c.json(toJob(row), 202);
	});
