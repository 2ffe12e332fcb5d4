/**
 * OpenAPI response declarations shared by the status routes: JSON bodies, the error envelope for
 * each status a route can answer, and the bearer security requirement.
 */
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
	413: "Body larger than the upload limit",
	415: "Body is not a supported image",
	429: "Too many requests",
	500: "Internal error",
	503: "Temporarily unavailable",
};

/** Error responses of a route, each with the `{"error": …}` envelope. */
export function errors<const S extends ErrorStatus>(...statuses: S[]): Record<S, ReturnType<typeof errorJson>> {
	return Object.fromEntries(statuses.map((s) => [s, errorJson(s)])) as Record<S, ReturnType<typeof errorJson>>;
}

const errorJson = (status: ErrorStatus) => json(ErrorBody, ERROR_DESCRIPTIONS[status]);

/** Every /v1 route takes `Authorization: Bearer <token>` (the admin token or an API key). */
export const BEARER = "bearerAuth";
export const authenticated = [{ [BEARER]: [] }];
