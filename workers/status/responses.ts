/**
 * OpenAPI response declarations shared by the status routes: JSON bodies, the error envelope for
 * each status a route can answer, and the bearer security requirement.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import { ErrorBody, type ErrorStatus } from "./api-error";

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
	description,
	content: { "application/json": { schema } },
});

const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
	400: "Invalid parameters; `details` names each field",
	401: "Missing, wrong or revoked bearer token",
	403: "The token may not do this",
	404: "Not found (or outside the key's prefix)",
	405: "Method not allowed on this path",
	409: "Conflict with the resource's state",
	411: "Content-Length missing: uploads are streamed and need it",
	413: "Body larger than the upload (or JSON body) limit",
	415: "Unsupported media type: a JSON body sent with another `Content-Type`, an upload that is not JPEG, PNG, WebP, GIF or BMP, or a stored object no preview can be made of",
	422: "The request cannot be processed as sent",
	429: "Too many requests: the API key's request rate, jobs in flight or open batches, or this address's requests without a valid token (`too_many_auth_failures`); retry after `Retry-After` seconds",
	500: "Internal error",
	503: "Temporarily unavailable (`unavailable`), or `secrets_key_mismatch`: this Worker's WEBHOOK_SECRETS_KEY is not the one the stored secrets were sealed with (any /v1 operation)",
};

/** Error responses of a route, each with the `{"error": …}` envelope. */
export function errors<const S extends ErrorStatus>(...statuses: S[]): Record<S, ReturnType<typeof errorJson>> {
	return Object.fromEntries(statuses.map((s) => [s, errorJson(s)])) as Record<S, ReturnType<typeof errorJson>>;
}

const errorJson = (status: ErrorStatus) => json(ErrorBody, ERROR_DESCRIPTIONS[status]);

type Document = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;

/**
 * What every authenticated operation may also answer, added to the generated document in one place
 * (workers/status/quotas.ts, settings.ts and capped-body.ts apply them to every /v1 route): 429 with
 * `Retry-After`, 503 `secrets_key_mismatch`, and 413 where the body is JSON.
 */
export function withLimitResponses(doc: Document): Document {
	const error = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
	const tooMany = {
		description: ERROR_DESCRIPTIONS[429],
		headers: {
			"Retry-After": {
				description: "Seconds to wait before trying again.",
				schema: { type: "integer" as const, minimum: 1 },
			},
		},
		content: error,
	};
	const tooLarge = { description: "JSON body larger than MAX_JSON_BYTES", content: error };
	const unavailable = { description: ERROR_DESCRIPTIONS[503], content: error };
	for (const item of Object.values(doc.paths ?? {})) {
		for (const method of ["get", "put", "post", "patch", "delete"] as const) {
			const op = item[method];
			if (!op?.security?.length || !op.responses) continue;
			op.responses["429"] = tooMany;
			op.responses["503"] ??= unavailable;
			const body = op.requestBody;
			if (body && "content" in body && body.content["application/json"]) op.responses["413"] ??= tooLarge;
		}
	}
	return doc;
}

/** Every /v1 route takes `Authorization: Bearer <token>` (the admin token or an API key). */
export const BEARER = "bearerAuth";
export const authenticated = [{ [BEARER]: [] }];
