/**
 * The status Worker's Hono environment: its bindings and who is calling. Every route module
 * (jobs, images, keys, webhooks) is typed with `AppEnv` and reads the caller with
 * `c.get("principal")`, set by the auth middleware before any /v1/* handler runs.
 */

/** Who made the request: the admin token, or an API key (optionally limited to an object-key prefix). */
export type Principal = { kind: "admin" } | { kind: "key"; id: string; prefix: string | null };

export type AppEnv = { Bindings: StatusEnv; Variables: { principal: Principal } };

/**
 * Whether an object key is visible to the caller. Anything outside a scoped key's prefix must be
 * answered as if it did not exist (404), never 403, so that its existence does not leak.
 */
export function inScope(principal: Principal, objectKey: string): boolean {
	if (principal.kind === "admin" || principal.prefix === null) return true;
	return objectKey.startsWith(principal.prefix);
}

/** The object-key prefix a caller is limited to, or null for full access. */
export function scopePrefix(principal: Principal): string | null {
	return principal.kind === "key" ? principal.prefix : null;
}
