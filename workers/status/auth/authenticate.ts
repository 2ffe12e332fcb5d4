/**
 * Authentication of /v1/*: `Authorization: Bearer <token>` is the ADMIN_TOKEN
 * secret or a live API key (looked up by its SHA-256 digest). The resolved `Principal` is set on
 * the context for the route handlers (auth/authorisation.ts says what it may do). Requests without
 * a valid token are limited per client address, checked before the token is (auth/failure-limit.ts).
 */
import type { MiddlewareHandler } from "hono";
import { log } from "../../../shared/log";
import { ApiError } from "../api-error";
import type { AppEnv } from "../app-env";
import { readSettings } from "../settings";
import { findLiveKeyByHash } from "./api-keys";
import type { Principal } from "./authorisation";
import { failureLimit } from "./failure-limit";
import { STREAM_TOKEN_PREFIX, verifyStreamToken } from "./stream-tokens";
import { API_KEY_PREFIX, bearerToken, secretsEqual, sha256Hex } from "./tokens";

export const unauthorized = (message: string) =>
	new ApiError(401, "unauthorized", message, null, { "WWW-Authenticate": 'Bearer realm="r2-captions"' });

/** The answer to a token that is wrong, or whose key is (or, mid-request, became) revoked. */
export const INVALID_TOKEN = "Invalid or revoked token";

async function resolvePrincipal(env: StatusEnv, token: string, digest: string): Promise<Principal | null> {
	const { ADMIN_TOKEN } = readSettings(env);
	if (!ADMIN_TOKEN) {
		log("warn", "admin_token_missing", { hint: "set the ADMIN_TOKEN secret" });
	} else if (await secretsEqual(token, ADMIN_TOKEN)) {
		return { kind: "admin" };
	}
	if (!token.startsWith(API_KEY_PREFIX)) return null;
	// The lookup compares digests, not tokens: timing can reveal nothing about a valid token.
	const key = await findLiveKeyByHash(env.DB, digest);
	return key ? { kind: "key", id: key.id, prefix: key.prefix } : null;
}

/**
 * A stream token in the URL (`?token=rcs_…`), accepted on `GET /v1/events` only: a browser's
 * EventSource cannot send headers. An API key in a URL is never accepted (URLs end up in logs).
 */
function streamTokenOf(method: string, path: string, token: string | undefined): string | null {
	if (method !== "GET" || path !== "/v1/events" || token === undefined) return null;
	return token.startsWith(STREAM_TOKEN_PREFIX) ? token : null;
}

export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
	const limit = failureLimit(c.env, c.req.raw.headers);
	const token = bearerToken(c.req.header("authorization"));
	const streamToken = token === null ? streamTokenOf(c.req.method, c.req.path, c.req.query("token")) : null;
	if (streamToken !== null) {
		const { WEBHOOK_SECRETS_KEY } = readSettings(c.env);
		const principal = WEBHOOK_SECRETS_KEY ? await verifyStreamToken(c.env.DB, WEBHOOK_SECRETS_KEY, streamToken) : null;
		if (principal === null) {
			await limit.missing();
			throw unauthorized("Invalid or expired stream token: make a new one with POST /v1/events/tokens");
		}
		c.set("principal", principal);
		return next();
	}
	if (token === null) {
		await limit.missing();
		throw unauthorized("Missing bearer token: send `Authorization: Bearer <token>`");
	}
	const digest = await sha256Hex(token);
	const trusted = await limit.admit(digest);
	const principal = await resolvePrincipal(c.env, token, digest);
	if (principal === null) {
		if (trusted) await limit.distrust(digest);
		throw unauthorized(INVALID_TOKEN);
	}
	if (!trusted) await limit.trust(digest);
	c.set("principal", principal);
	await next();
};
