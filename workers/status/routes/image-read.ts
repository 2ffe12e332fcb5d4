/**
 * `GET /v1/images/{key}`: an object of the bucket, as stored, or with `?width=` a small WebP
 * preview made by the Images binding (the dashboard's thumbnails). Scoped keys get 404 outside
 * their prefix. Answers carry the object's ETag, so a client revalidates with `If-None-Match` and
 * gets a 304 without the object being read or transformed again. Only image types are served as
 * such: anything else in the bucket goes out as an attachment of `application/octet-stream`.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { decimalInt } from "../../../shared/decimal-int";
import { classifyImagesError } from "../../../shared/image/images-errors";
import { MIME } from "../../../shared/image/sniff";
import { errorMessage, log } from "../../../shared/log";
import { ApiError, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope } from "../auth/authorisation";
import { authenticated, errors } from "../responses";
import { ObjectKey, requireDecodableKeyPath, validationHook } from "../validation";

const IMAGE_TYPES = new Set<string>(Object.values(MIME));

/** Preview widths: enough for a thumbnail or a job page, never a way to upscale a small image. */
export const PREVIEW_WIDTH = { min: 16, max: 2048 } as const;

const ImageQuery = z.object({
	width: decimalInt(PREVIEW_WIDTH.min, PREVIEW_WIDTH.max)
		.optional()
		.meta({ description: "Answer a WebP preview at most this many pixels wide (never wider than the original)." }),
});

const binary = { schema: z.string().meta({ format: "binary" }) };

const getImageRoute = createRoute({
	method: "get",
	path: "/v1/images/{key}",
	operationId: "getImage",
	summary: "Download an image, or a small preview of it",
	description:
		"The object as stored (`Content-Type` from its metadata when it is an image type, otherwise " +
		"`application/octet-stream` as an attachment), or with `width` a WebP preview made by the Images binding. " +
		"Send the key percent-encoded in one segment, as for the upload. Answers carry an `ETag`; send it back in " +
		"`If-None-Match` to get a `304`.",
	security: authenticated,
	request: {
		params: z.object({ key: ObjectKey.meta({ description: "The object key; a `/` in it is sent as `%2F`." }) }),
		query: ImageQuery,
		headers: z.object({
			"If-None-Match": z.string().optional().meta({ description: "The `ETag` of a copy the client holds." }),
		}),
	},
	responses: {
		200: {
			description: "The image (or the preview)",
			headers: z.object({ ETag: z.string().meta({ description: "Changes when the object or the width does." }) }),
			content: { "image/*": binary, "application/octet-stream": binary },
		},
		304: { description: "The client's copy (`If-None-Match`) is current" },
		...errors(400, 401, 404, 415, 503),
	},
});

/** The object ETags an `If-None-Match` names for this width (previews are tagged `W/"<etag>-w<width>"`). */
function requestedEtags(header: string | undefined, width: number | undefined): string[] {
	if (!header) return [];
	const suffix = width === undefined ? "" : `-w${width}`;
	return header
		.split(",")
		.map((tag) => tag.trim().replace(/^W\//, "").replace(/^"|"$/g, ""))
		.filter((tag) => tag.endsWith(suffix))
		.map((tag) => tag.slice(0, tag.length - suffix.length));
}

const etagOf = (etag: string, width: number | undefined) =>
	width === undefined ? `"${etag}"` : `W/"${etag}-w${width}"`;

/** What every answer about an object carries: it is private to the token, and never run as a page. */
function commonHeaders(etag: string): Record<string, string> {
	return {
		ETag: etag,
		"Cache-Control": "private, no-cache",
		"X-Content-Type-Options": "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
	};
}

const fileName = (key: string) => encodeURIComponent(key.slice(key.lastIndexOf("/") + 1) || "image");

const imageReadRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

// As for the upload: the routing pattern lets keys contain slashes; the documented path is `{key}`.
imageReadRoutes.openapi({ ...getImageRoute, path: "/v1/images/{key{.+}}", hide: true }, async (c) => {
	requireDecodableKeyPath(c.req.url);
	const { key } = c.req.valid("param");
	const { width } = c.req.valid("query");
	if (!inScope(c.get("principal"), key)) throw notFound(`Object ${key}`);

	const known = requestedEtags(c.req.valid("header")["If-None-Match"], width);
	// R2's condition takes one ETag: a list (as HTTP allows) is checked against a `head` first.
	if (known.length > 1) {
		const current = await c.env.BUCKET.head(key);
		if (!current) throw notFound(`Object ${key}`);
		if (known.includes(current.etag)) return c.body(null, 304, commonHeaders(etagOf(current.etag, width)));
	}
	const [only] = known;
	const object = await c.env.BUCKET.get(key, known.length === 1 && only ? { onlyIf: { etagDoesNotMatch: only } } : {});
	if (!object) throw notFound(`Object ${key}`);
	const headers = commonHeaders(etagOf(object.etag, width));
	if (!("body" in object)) return c.body(null, 304, headers);

	if (width === undefined) {
		const stored = object.httpMetadata?.contentType ?? "";
		const image = IMAGE_TYPES.has(stored);
		return c.body(object.body, 200, {
			...headers,
			"Content-Type": image ? stored : "application/octet-stream",
			"Content-Length": String(object.size),
			"Content-Disposition": `${image ? "inline" : "attachment"}; filename*=UTF-8''${fileName(key)}`,
		});
	}

	try {
		const preview = await c.env.IMAGES.input(object.body)
			.transform({ width, fit: "scale-down" })
			.output({ format: "image/webp", quality: 80 });
		return c.body(preview.image(), 200, { ...headers, "Content-Type": preview.contentType() });
	} catch (err) {
		const { kind, code } = classifyImagesError(err);
		log("info", "preview_failed", { key, width, code, error: errorMessage(err) });
		// Only the image's own fault is a 415; the service's or the account's trouble is not the caller's.
		if (kind === "undecodable" || kind === "undecodable_or_internal" || kind === "too_large") {
			throw new ApiError(
				415,
				"unsupported_media_type",
				`No preview can be made of ${key}: it is not a decodable image`,
			);
		}
		throw new ApiError(
			503,
			"unavailable",
			`No preview can be made of ${key} now: the Images service failed (${code ?? "no code"})`,
			null,
			{ "Retry-After": "30" },
		);
	}
});
imageReadRoutes.openAPIRegistry.registerPath(getImageRoute);

export { imageReadRoutes };
