/**
 * `PUT /v1/images/{key}`: upload an image to the bucket. The type is sniffed from the bytes (415
 * otherwise), the size capped (413), the caption headers validated with the same schemas the
 * consumer applies to custom metadata and stored as that metadata. The upload creates the object
 * version's job itself, so the answer is the queued job; in local mode it also enqueues the
 * notification R2 would send (local R2 sends none; in production the bucket's rule does).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { MIME, sniffFormat } from "../../../shared/image/sniff";
import { CallbackUrl, MaxTokens, METADATA_KEYS, Prompt } from "../../../shared/jobs/options";
import { Job, toJob } from "../../../shared/jobs/schema";
import { putObjectNotification } from "../../../shared/queue/caption-jobs";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import { ApiError, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope, principalKeyId } from "../auth/authorisation";
import { headBytes, readCappedBody } from "../capped-body";
import { ensureNotificationJob } from "../jobs/create";
import { authenticated, errors } from "../responses";
import { readSettings } from "../settings";
import { ObjectKey, requireSafeWebhookUrl, validationHook } from "../validation";

const UploadHeaders = z.object({
	"X-Caption-Prompt": Prompt.optional().meta({ description: "Stored as custom metadata `prompt`." }),
	"X-Caption-Max-Tokens": MaxTokens.optional().meta({ description: "Stored as custom metadata `max-tokens`." }),
	"X-Callback-Url": CallbackUrl.optional().meta({ description: "Stored as custom metadata `callback-url`." }),
});

const uploadRoute = createRoute({
	method: "put",
	path: "/v1/images/{key}",
	operationId: "uploadImage",
	summary: "Upload an image",
	description:
		"Send the key as one percent-encoded path segment: `PUT /v1/images/photos%2Fcat.jpg` stores `photos/cat.jpg` " +
		"(generated clients encode it so); unencoded slashes are accepted too. The body is the image (JPEG, PNG, " +
		"WebP, GIF or BMP, recognised from its bytes).",
	security: authenticated,
	request: {
		params: z.object({
			key: ObjectKey.meta({
				example: "photos/cat.jpg",
				description: "The object key; a `/` in it is sent as `%2F` (both spellings are accepted).",
			}),
		}),
		headers: UploadHeaders,
		body: {
			required: true,
			content: { "application/octet-stream": { schema: z.string().meta({ format: "binary" }) } },
		},
	},
	responses: {
		202: { description: "The object version's queued job", content: { "application/json": { schema: Job } } },
		...errors(400, 401, 404, 413, 415),
	},
});

const imageRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

// Hono's `{key}` matches one path segment; the routing pattern lets keys contain slashes while the
// documented path stays `/v1/images/{key}` (registered below with the same request schemas).
imageRoutes.openapi({ ...uploadRoute, path: "/v1/images/{key{.+}}", hide: true }, async (c) => {
	const { key } = c.req.valid("param");
	const headers = c.req.valid("header");
	const settings = readSettings(c.env);
	if (!inScope(c.get("principal"), key)) throw notFound(`Object ${key}`);
	const callbackUrl = headers["X-Callback-Url"];
	if (callbackUrl !== undefined) requireSafeWebhookUrl(settings.DEPLOY_MODE, callbackUrl, "X-Callback-Url", "header");

	const chunks = await readCappedBody(c.req.raw, settings.MAX_UPLOAD_BYTES);
	const format = sniffFormat(headBytes(chunks, 64));
	if (format === null) {
		throw new ApiError(415, "unsupported_media_type", "The body is not a JPEG, PNG, WebP, GIF or BMP image");
	}

	const customMetadata: Record<string, string> = {};
	if (headers["X-Caption-Prompt"] !== undefined) customMetadata[METADATA_KEYS.prompt] = headers["X-Caption-Prompt"];
	if (headers["X-Caption-Max-Tokens"] !== undefined) {
		customMetadata[METADATA_KEYS.maxTokens] = String(headers["X-Caption-Max-Tokens"]);
	}
	if (headers["X-Callback-Url"] !== undefined) customMetadata[METADATA_KEYS.callbackUrl] = headers["X-Callback-Url"];

	const object = await c.env.BUCKET.put(key, new Blob(chunks), {
		httpMetadata: { contentType: MIME[format] },
		customMetadata,
	});
	const row = await ensureNotificationJob(c.env.DB, {
		bucket: settings.BUCKET_NAME,
		key,
		etag: object.etag,
		size: object.size,
		contentType: MIME[format],
		prompt: headers["X-Caption-Prompt"] ?? null,
		maxTokens: headers["X-Caption-Max-Tokens"] ?? null,
		callbackUrl: headers["X-Callback-Url"] ?? null,
		keyId: principalKeyId(c.get("principal")),
	});
	if (settings.DEPLOY_MODE === "local") {
		await sendOrLeaveToSweeper(
			c.env.CAPTION_JOBS,
			{ body: putObjectNotification({ bucket: settings.BUCKET_NAME, key, size: object.size, etag: object.etag }) },
			{ queue: "caption-jobs", job_id: row.id },
		);
	}
	return c.json(toJob(row), 202);
});
imageRoutes.openAPIRegistry.registerPath(uploadRoute);

export { imageRoutes };
