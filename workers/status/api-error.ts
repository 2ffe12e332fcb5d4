/**
 * The HTTP API's one error type and its JSON envelope (docs/errors.md):
 * `{"error": {"code", "message", "details"}}`. Route code throws `ApiError`; the status Worker's
 * single `onError` renders it. Codes are stable strings that clients may switch on.
 */
import { z } from "zod";

/** The HTTP statuses the API answers errors with, and the default code of each. */
export const ERROR_CODES = {
	400: "invalid_request",
	401: "unauthorized",
	403: "forbidden",
	404: "not_found",
	405: "method_not_allowed",
	409: "conflict",
	411: "length_required",
	413: "payload_too_large",
	415: "unsupported_media_type",
	422: "unprocessable_content",
	429: "rate_limited",
	500: "internal_error",
	503: "unavailable",
} as const;
export type ErrorStatus = keyof typeof ERROR_CODES;

/** Where an invalid parameter was found. */
export const ParamLocation = z.enum(["path", "query", "header", "body"]);
export type ParamLocation = z.infer<typeof ParamLocation>;

/** One invalid field of a 400 answer: `details` is a list of these. */
export const FieldIssue = z
	.object({
		field: z.string().meta({ example: "limit" }),
		in: ParamLocation,
		message: z.string(),
	})
	.meta({ id: "FieldIssue" });
export type FieldIssue = z.infer<typeof FieldIssue>;

export const ErrorBody = z
	.object({
		error: z.object({
			code: z.string().meta({ example: "invalid_request" }),
			message: z.string(),
			details: z.union([z.array(FieldIssue), z.record(z.string(), z.unknown()), z.null()]),
		}),
	})
	.meta({ id: "Error" });
export type ErrorBody = z.infer<typeof ErrorBody>;

export type ErrorDetails = FieldIssue[] | Record<string, unknown> | null;

export class ApiError extends Error {
	override readonly name = "ApiError";
	constructor(
		readonly status: ErrorStatus,
		readonly code: string,
		message: string,
		readonly details: ErrorDetails = null,
		/** Extra response headers, e.g. `Allow` on 405 or `WWW-Authenticate` on 401. */
		readonly headers: Record<string, string> = {},
	) {
		super(message);
	}

	toBody(): ErrorBody {
		return { error: { code: this.code, message: this.message, details: this.details } };
	}
}

/** 400 naming the offending fields. */
export function invalidParams(issues: FieldIssue[]): ApiError {
	const message = issues.map((i) => `Invalid ${i.in} parameter ${i.field}: ${i.message}`).join("; ");
	return new ApiError(400, ERROR_CODES[400], message, issues);
}

export const invalidParam = (field: string, location: ParamLocation, message: string): ApiError =>
	invalidParams([{ field, in: location, message }]);

/** 404 for things that do not exist, or that the caller may not know exist. */
export const notFound = (what: string): ApiError => new ApiError(404, ERROR_CODES[404], `${what} not found`);
