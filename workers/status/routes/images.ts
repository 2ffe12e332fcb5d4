/**
 * `PUT /v1/images/{key}`: upload an image to the bucket. The body is streamed into R2, never held:
 * its Content-Length is required (411) and capped (413), the type is sniffed from its first bytes
 * (415 otherwise), the caption headers validated with the same schemas the consumer applies to
 * custom metadata and stored as that metadata (400 over R2's 8 KiB). The upload creates the object
 * version's job itself (one per version and options), so the answer is the queued job; in local
 * mode it also enqueues the notification R2 would send (local R2 sends none; in production the
 * bucket's rule does).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { MIME, sniffFormat } from "../../../shared/image/sniff";
import { CallbackUrl, MaxTokensText, METADATA_KEYS, optionsKey, Prompt } from "../../../shared/jobs/options";
import { Job, toJob } from "../../../shared/jobs/schema";
import { type CaptionRequest, putObjectNotification } from "../../../shared/queue/caption-jobs";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import { MAX_METADATA_BYTES, metadataBytes, R2_METADATA_TOO_LARGE, r2ErrorCode } from "../../../shared/r2-limits";
import { ApiError, type FieldIssue, invalidParams, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope, principalKeyId } from "../auth/authorisation";
import { declaredLength, peek, putStreamed } from "../capped-body";
import { ensureNotificationJob } from "../jobs/create";
import { type OutputColumns, outputColumns, outputHeaderFields } from "../output-options";
import { requireJobCapacity } from "../quotas";
import { authenticated, errors } from "../responses";
import { readSettings } from "../settings";
import { ImageKey, requireDecodableKeyPath, requireSafeWebhookUrl, validationHook } from "../validation";

const UploadHeaders = z.object({
	"X-Caption-Prompt": Prompt.optional().meta({ description: "Stored as custom metadata `prompt`." }),
	"X-Caption-Max-Tokens": MaxTokensText.optional().meta({ description: "Stored as custom metadata `max-tokens`." }),
	"X-Callback-Url": CallbackUrl.optional().meta({ description: "Stored as custom metadata `callback-url`." }),
	...outputHeaderFields,
});

/** Enough of the body to recognise every supported format. */
const SNIFF_BYTES = 64;

const HEADER_OF_METADATA: Record<string, string> = {
	[METADATA_KEYS.prompt]: "X-Caption-Prompt",
	[METADATA_KEYS.maxTokens]: "X-Caption-Max-Tokens",
	[METADATA_KEYS.callbackUrl]: "X-Callback-Url",
	[METADATA_KEYS.output]: "X-Caption-Output",
	[METADATA_KEYS.language]: "X-Caption-Language",
	[METADATA_KEYS.writeBack]: "X-Caption-Write-Back",
};

/** 400 metadata_too_large naming the caption headers the metadata came from. */
function metadataTooLarge(metadata: Record<string, string>, message: string): ApiError {
	const details: FieldIssue[] = Object.keys(metadata).map((k) => ({
		field: HEADER_OF_METADATA[k] ?? k,
		in: "header",
		message,
	}));
	return new ApiError(400, "metadata_too_large", message, details);
}

/**
 * The caption headers as the object's custom metadata; 400 naming them when R2 would refuse its
 * size. The headers' own bounds (prompt, callback URL) keep today's three under it; the check keeps
 * any future one honest, counted in UTF-8 bytes (shared/r2-limits.ts). R2 may count more than that
 * (local R2 does, for characters over U+00FF): its refusal of the put is the same 400.
 */
export function uploadMetadata(
	headers: z.infer<typeof UploadHeaders>,
	outputs: OutputColumns = { output: null, language: null, writeBack: null },
): Record<string, string> {
	const metadata: Record<string, string> = {};
	if (outputs.output !== null) metadata[METADATA_KEYS.output] = outputs.output;
	if (outputs.language !== null) metadata[METADATA_KEYS.language] = outputs.language;
	if (outputs.writeBack !== null) metadata[METADATA_KEYS.writeBack] = outputs.writeBack;
	if (headers["X-Caption-Prompt"] !== undefined) metadata[METADATA_KEYS.prompt] = headers["X-Caption-Prompt"];
	if (headers["X-Caption-Max-Tokens"] !== undefined) {
		metadata[METADATA_KEYS.maxTokens] = String(headers["X-Caption-Max-Tokens"]);
	}
	if (headers["X-Callback-Url"] !== undefined) metadata[METADATA_KEYS.callbackUrl] = headers["X-Callback-Url"];
	const bytes = metadataBytes(metadata);
	if (bytes > MAX_METADATA_BYTES) {
		throw metadataTooLarge(
			metadata,
			`Together the caption headers make ${bytes} bytes of object metadata; R2 allows ${MAX_METADATA_BYTES}`,
		);
	}
	return metadata;
}

/**
 * 400 naming each caption header that was not UTF-8. The runtime reads header bytes as UTF-8 and
 * turns what is not into U+FFFD, so a client that sends Latin-1 (Node's fetch does, for `é`) would
 * have a prompt of replacement characters stored and captioned with; JSON bodies are refused the
 * same way (capped-body.ts).
 */
export function requireUtf8Headers(headers: Record<string, unknown>): void {
	const message =
		"Not UTF-8: send the value's UTF-8 bytes (a replacement character U+FFFD is taken for a byte that was not)";
	const issues: FieldIssue[] = Object.entries(headers)
		.filter(([, value]) => typeof value === "string" && value.includes("\uFFFD"))
		.map(([field]) => ({ field, in: "header", message }));
	if (issues.length > 0) throw invalidParams(issues);
}

/**
 * The body's type is recognised from its bytes, so any of these Content-Types is accepted (and none
 * is trusted): each image type the service reads, and `application/octet-stream`.
 */
const UPLOAD_CONTENT = Object.fromEntries(
	[...Object.values(MIME), "application/octet-stream"].map((type) => [
		type,
		{ schema: z.string().meta({ format: "binary" }) },
	]),
);

const uploadRoute = createRoute({
	method: "put",
	path: "/v1/images/{key}",
	operationId: "uploadImage",
	summary: "Upload an image",
	description:
		"Send the key as one percent-encoded path segment: `PUT /v1/images/photos%2Fcat.jpg` stores `photos/cat.jpg` " +
		"(generated clients encode it so); unencoded slashes are accepted too. The body is the image (JPEG, PNG, " +
		"WebP, GIF or BMP, recognised from its bytes), sent with a Content-Length (it is streamed into the bucket). " +
		"Uploading the same bytes again answers the existing job if the caption headers are the same, and a new " +
		"job if they differ. Earlier bytes written back over the key (A, then B, then A again) get a new job when " +
		"their job failed `object_not_found` (replaced before it ran) or finished before the key's current caption, " +
		"an AI caption of other bytes, was made: the current caption then describes the object again.",
	security: authenticated,
	request: {
		params: z.object({
			key: ImageKey.meta({
				example: "photos/cat.jpg",
				description: "The object key; a `/` in it is sent as `%2F` (both spellings are accepted).",
			}),
		}),
		headers: UploadHeaders,
		body: {
			required: true,
			content: UPLOAD_CONTENT,
		},
	},
	responses: {
		202: { description: "The object version's queued job", content: { "application/json": { schema: Job } } },
		...errors(400, 401, 404, 411, 413, 415),
	},
});

const imageRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

// Hono's `{key}` matches one path segment; the routing pattern lets keys contain slashes (and
// control characters, which Hono has decoded by then, so that validation refuses them with a 400)
// while the documented path stays `/v1/images/{key}` (registered below with the same request schemas).
imageRoutes.openapi({ ...uploadRoute, path: "/v1/images/{key{[\\s\\S]+}}", hide: true }, async (c) => {
	requireDecodableKeyPath(c.req.url);
	const { key } = c.req.valid("param");
	const headers = c.req.valid("header");
	const settings = readSettings(c.env);
	const principal = c.get("principal");
	if (!inScope(principal, key)) throw notFound(`Object ${key}`);
	requireUtf8Headers(headers);
	const callbackUrl = headers["X-Callback-Url"];
	if (callbackUrl !== undefined) requireSafeWebhookUrl(settings.DEPLOY_MODE, callbackUrl, "X-Callback-Url", "header");
	const outputs = outputColumns(
		{
			output: headers["X-Caption-Output"],
			language: headers["X-Caption-Language"],
			write_back: headers["X-Caption-Write-Back"],
		},
		{ output: "X-Caption-Output", in: "header" },
	);
	const customMetadata = uploadMetadata(headers, outputs);
	const length = declaredLength(c.req.raw, settings.MAX_UPLOAD_BYTES);
	await requireJobCapacity(c.env, principal);

	const peeked = await peek(c.req.raw.body, SNIFF_BYTES);
	const format = sniffFormat(peeked.head);
	if (format === null) {
		await peeked.body.cancel();
		// An empty body is most often a client that could not read its file (curl sends 0 bytes for a
		// wrong @path, with a warning that -s hides): the message says so; the code is the contract's.
		const message =
			peeked.head.byteLength === 0
				? "The body is empty (0 bytes)"
				: "The body is not a JPEG, PNG, WebP, GIF or BMP image";
		throw new ApiError(415, "unsupported_media_type", message);
	}
	const object = await putStreamed(c.env.BUCKET, key, peeked.body, length, {
		httpMetadata: { contentType: MIME[format] },
		customMetadata,
	}).catch((error: unknown) => {
		if (r2ErrorCode(error) !== R2_METADATA_TOO_LARGE) throw error;
		throw metadataTooLarge(
			customMetadata,
			`R2 refused the object metadata the caption headers make (${metadataBytes(customMetadata)} bytes in UTF-8) as over its limit of ${MAX_METADATA_BYTES} bytes`,
		);
	});
	if (object === null) {
		const message = `The body did not match its Content-Length of ${length} bytes`;
		throw new ApiError(400, "invalid_request", message, [{ field: "Content-Length", in: "header", message }]);
	}
	const { row, unclaimable } = await ensureNotificationJob(c.env.DB, {
		bucket: settings.BUCKET_NAME,
		key,
		etag: object.etag,
		size: object.size,
		contentType: MIME[format],
		prompt: headers["X-Caption-Prompt"] ?? null,
		maxTokens: headers["X-Caption-Max-Tokens"] ?? null,
		callbackUrl: headers["X-Callback-Url"] ?? null,
		keyId: principalKeyId(principal),
		outputs,
		optionsKey: await optionsKey(customMetadata),
	});
	if (settings.DEPLOY_MODE === "local") {
		await sendOrLeaveToSweeper(
			c.env.CAPTION_JOBS,
			{ body: putObjectNotification({ bucket: settings.BUCKET_NAME, key, size: object.size, etag: object.etag }) },
			{ queue: "caption-jobs", job_id: row.id },
		);
	}
	// An earlier upload of the same bytes with other options: its job is sent by id (see ensureNotificationJob).
	for (const id of unclaimable) {
		const request: CaptionRequest = { kind: "caption-job", job_id: id };
		await sendOrLeaveToSweeper(c.env.CAPTION_JOBS, { body: request }, { queue: "caption-jobs", job_id: id });
	}
	return c.json(toJob(row), 202);
});
imageRoutes.openAPIRegistry.registerPath(uploadRoute);

export { imageRoutes };
