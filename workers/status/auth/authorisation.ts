/**
 * The authorisation rules of the status API. A caller is the admin (everything) or an API key,
 * which may be limited to an object-key prefix: anything outside it is answered as if it did not
 * exist (404, never 403, so its existence does not leak). Key management and the recovery sweep are
 * for the admin alone.
 */
import type { MiddlewareHandler } from "hono";
import { ApiError } from "../api-error";
import type { AppEnv } from "../app-env";

/** Who made the request: the admin token, or an API key (optionally limited to an object-key prefix). */
export type Principal = { kind: "admin" } | { kind: "key"; id: string; prefix: string | null };

/** Whether an object key is visible to the caller. */
export function inScope(principal: Principal, objectKey: string): boolean {
	if (principal.kind === "admin" || principal.prefix === null) return true;
	return objectKey.startsWith(principal.prefix);
}

/** The object-key prefix a caller is limited to, or null for full access. */
export function scopePrefix(principal: Principal): string | null {
	return principal.kind === "key" ? principal.prefix : null;
}

/** The API key making the request, or null for the admin token. */
export function principalKeyId(principal: Principal): string | null {
	return principal.kind === "key" ? principal.id : null;
}

/** 403 for an API key; `what` names what only the admin may do ("manage API keys"). */
export const requireAdmin =
	(what: string): MiddlewareHandler<AppEnv> =>
	async (c, next) => {
		if (c.get("principal").kind !== "admin") {
			throw new ApiError(403, "forbidden", `Only the admin token can ${what}`);
		}
		await next();
	};
