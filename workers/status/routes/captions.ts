/**
 * Caption endpoints (docs/api.md#captions): the current caption of every object in key order, one
 * object's caption with its history, a person's caption (`PUT`, a `human` version that sends
 * `caption.updated`), and the current captions of a prefix as a file. A scoped key sees only
 * objects under its prefix; any other answers 404.
 */

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { Caption, CaptionWithHistory, toCaption, toCaptionVersion } from "../../../shared/captions/schema";
import { decimalInt } from "../../../shared/decimal-int";
import { notifyEventHub } from "../../../shared/events/notify";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import type { CaptionEventMessage } from "../../../shared/queue/webhook-deliveries";
import { ApiError, invalidParam, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope, scopePrefix } from "../auth/authorisation";
import { EXPORT_FORMATS } from "../batches/export";
import { captionExportHeaders, captionExportStream } from "../captions/export";
import { captionHistory, effectivePrefix, getCurrentCaption, listCaptions, writeHumanCaption } from "../captions/store";
import { keyOrderCursor } from "../keyset-cursor";
import { authenticated, errors, json } from "../responses";
import { readSettings } from "../settings";
import { ObjectKey, requireDecodableKeyPath, validationHook } from "../validation";

/** The longest caption a person may write (a model's caption is far shorter). */
export const MAX_CAPTION_CHARS = 10_000;

const CaptionList = z
	.object({
		data: z.array(Caption),
		next_cursor: z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null on the last." }),
	})
	.meta({ id: "CaptionList" });

const Prefix = z.string().max(1024).optional().meta({ description: "Object-key prefix, e.g. `photos/`." });

const KeyParams = z.object({ key: ObjectKey.meta({ description: "The object key; a `/` in it is sent as `%2F`." }) });

export const PutCaptionBody = z
	.strictObject({ text: z.string().trim().min(1).max(MAX_CAPTION_CHARS).meta({ example: "A cat asleep on a sofa." }) })
	.meta({ id: "PutCaption" });

const listCaptionsRoute = createRoute({
	method: "get",
	path: "/v1/captions",
	operationId: "listCaptions",
	summary: "List objects' current captions, in key order",
	description:
		"Only objects that have a caption. A page reads `limit + 1` captions whatever the prefix. A scoped key sees its prefix only (a prefix outside it lists nothing).",
	security: authenticated,
	request: {
		query: z.object({
			prefix: Prefix,
			limit: decimalInt(1, 100).default(20),
			cursor: z.string().optional().meta({ description: "`next_cursor` of the previous page." }),
		}),
	},
	responses: { 200: json(CaptionList, "A page of captions"), ...errors(400, 401) },
});

const getCaptionRoute = createRoute({
	method: "get",
	path: "/v1/captions/{key}",
	operationId: "getCaption",
	summary: "Get an object's current caption and every version of it",
	security: authenticated,
	request: { params: KeyParams },
	responses: { 200: json(CaptionWithHistory, "The caption, with `history` newest first"), ...errors(400, 401, 404) },
});

const putCaptionRoute = createRoute({
	method: "put",
	path: "/v1/captions/{key}",
	operationId: "putCaption",
	summary: "Write an object's caption (a human version)",
	description:
		"Adds a version with `source: human`, `job_id` and `model` null, and makes it current: it stays current until a " +
		"re-caption batch with `overwrite_human` captions the object. Sends `caption.updated` to subscriptions that list it. " +
		"404 when the object is not in the bucket.",
	security: authenticated,
	request: {
		params: KeyParams,
		body: { required: true, content: { "application/json": { schema: PutCaptionBody } } },
	},
	responses: { 200: json(Caption, "The object's caption, now this one"), ...errors(400, 401, 404, 415) },
});

const stream = (description: string) => ({ schema: z.string().meta({ description }) });

const exportCaptionsRoute = createRoute({
	method: "get",
	path: "/v1/exports/captions",
	operationId: "exportCaptions",
	summary: "Download the current captions of a prefix",
	description:
		"Streamed in key order, read 500 captions at a time. `jsonl`: one Caption JSON per line. `csv`: RFC 4180 with a header row " +
		"(key, etag, text, source, job_id, model, prompt, versions, updated_at). `hf`: a Hugging Face `imagefolder` " +
		"`metadata.jsonl` (`file_name` relative to the folder of the prefix, `text`). A scoped key's export covers its " +
		"prefix; a prefix outside it is 404.",
	security: authenticated,
	request: { query: z.object({ prefix: Prefix, format: z.enum(EXPORT_FORMATS).default("jsonl") }) },
	responses: {
		200: {
			description: "The file (Content-Disposition: attachment)",
			content: {
				"application/x-ndjson": stream("`jsonl`: Caption JSON lines; `hf`: metadata.jsonl lines"),
				"text/csv": stream("`csv`"),
			},
		},
		...errors(400, 401, 404),
	},
});

export const captionRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(listCaptionsRoute, async (c) => {
		const q = c.req.valid("query");
		const after = q.cursor === undefined ? null : keyOrderCursor.decode(q.cursor);
		if (after === null && q.cursor !== undefined) {
			throw invalidParam("cursor", "query", "Not a cursor returned by this API");
		}
		const prefix = effectivePrefix(q.prefix, scopePrefix(c.get("principal")));
		if (prefix === null) return c.json({ data: [], next_cursor: null }, 200);
		const page = await listCaptions(c.env.DB, readSettings(c.env).BUCKET_NAME, prefix, after, q.limit);
		const next = page.nextAfter === null ? null : keyOrderCursor.encode(page.nextAfter);
		return c.json({ data: page.rows.map(toCaption), next_cursor: next }, 200);
	})
	// As for images: the routing pattern lets keys contain unencoded slashes; the documented path is `{key}`.
	.openapi({ ...getCaptionRoute, path: "/v1/captions/{key{[\\s\\S]+}}", hide: true }, async (c) => {
		requireDecodableKeyPath(c.req.url);
		const { key } = c.req.valid("param");
		if (!inScope(c.get("principal"), key)) throw notFound(`Caption of ${key}`);
		const bucket = readSettings(c.env).BUCKET_NAME;
		const [current, history] = await Promise.all([
			getCurrentCaption(c.env.DB, bucket, key),
			captionHistory(c.env.DB, bucket, key),
		]);
		if (!current) throw notFound(`Caption of ${key}`);
		return c.json({ ...toCaption(current), history: history.map(toCaptionVersion) }, 200);
	})
	.openapi({ ...putCaptionRoute, path: "/v1/captions/{key{[\\s\\S]+}}", hide: true }, async (c) => {
		requireDecodableKeyPath(c.req.url);
		const { key } = c.req.valid("param");
		const { text } = c.req.valid("json");
		if (!inScope(c.get("principal"), key)) throw notFound(`Object ${key}`);
		const object = await c.env.BUCKET.head(key);
		if (!object) throw notFound(`Object ${key}`);
		const written = await writeHumanCaption(c.env.DB, {
			bucket: readSettings(c.env).BUCKET_NAME,
			key,
			etag: object.etag,
			text,
		});
		const message: CaptionEventMessage = { kind: "caption-event", event_id: written.eventId };
		await Promise.all([
			sendOrLeaveToSweeper(
				c.env.WEBHOOK_DELIVERIES,
				{ body: message, contentType: "json" },
				{ queue: "webhook-deliveries", event_id: written.eventId },
			),
			notifyEventHub(c.env.EVENT_HUB, [written.eventId]),
		]);
		return c.json(written.caption, 200);
	})
	.openapi(exportCaptionsRoute, async (c) => {
		const q = c.req.valid("query");
		const prefix = effectivePrefix(q.prefix, scopePrefix(c.get("principal")));
		if (prefix === null) {
			throw new ApiError(404, "not_found", `No objects under prefix ${q.prefix ?? ""} are visible to this key`);
		}
		const stream = captionExportStream(c.env.DB, readSettings(c.env).BUCKET_NAME, prefix, q.format);
		return new Response(stream, { status: 200, headers: captionExportHeaders(q.format) });
	});
captionRoutes.openAPIRegistry.registerPath(getCaptionRoute);
captionRoutes.openAPIRegistry.registerPath(putCaptionRoute);
