/**
 * Quotas of API keys (docs/api.md, "Quotas and limits"): a request rate per key (RATE_LIMIT_PER_MINUTE with a burst of
 * RATE_LIMIT_BURST, kept by the key's ApiKeyRateLimiter) and a cap on the key's jobs in flight
 * (MAX_JOBS_IN_FLIGHT queued or processing jobs made by its uploads and `POST /v1/jobs`). Both
 * answer 429 with `Retry-After`. The admin token is the operator's and has neither.
 */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { ApiError } from "./api-error";
import type { AppEnv } from "./app-env";
import type { Principal } from "./auth/authorisation";
import { readSettings } from "./settings";

/** What a client at the in-flight cap is told to wait: jobs finish in seconds. */
export const IN_FLIGHT_RETRY_AFTER_SECONDS = 5;

const tooMany = (code: string, message: string, retryAfterSeconds: number, details: Record<string, unknown>) =>
	new ApiError(
		429,
		code,
		message,
		{ ...details, retry_after_seconds: retryAfterSeconds },
		{ "Retry-After": String(retryAfterSeconds) },
	);

/** The request rate of API keys; runs after authentication. */
export const rateLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
	const principal = c.get("principal");
	if (principal.kind === "key") {
		const settings = readSettings(c.env);
		const perMinute = settings.RATE_LIMIT_PER_MINUTE;
		const limiter = c.env.API_RATE_LIMITER.getByName(principal.id);
		const reservation = await limiter.reserve({
			requestsPerMinute: perMinute,
			burst: settings.RATE_LIMIT_BURST,
			maxWaitMs: 0,
		});
		if (reservation.kind === "refused") {
			const seconds = Math.max(1, Math.ceil(reservation.retryAfterMs / 1000));
			throw tooMany("rate_limited", `This API key is limited to ${perMinute} requests per minute`, seconds, {
				limit_per_minute: perMinute,
				burst: settings.RATE_LIMIT_BURST,
			});
		}
	}
	await next();
};

/**
 * Refuses a new job when the key already has MAX_JOBS_IN_FLIGHT queued or processing. The count
 * reads the key's entries of the partial index `jobs_key_in_flight`, at most the cap's worth.
 * Checked before the object is written, so concurrent requests of one key may pass it together.
 */
export async function requireJobCapacity(env: StatusEnv, principal: Principal): Promise<void> {
	if (principal.kind !== "key") return;
	const cap = readSettings(env).MAX_JOBS_IN_FLIGHT;
	const inFlight = await countJobsInFlight(env.DB, principal.id, cap);
	if (inFlight >= cap) {
		throw tooMany(
			"too_many_jobs_in_flight",
			`This API key already has ${inFlight} jobs queued or processing; the limit is ${cap}`,
			IN_FLIGHT_RETRY_AFTER_SECONDS,
			{ limit: cap },
		);
	}
}

const CountRow = z.object({ n: z.number().int() });

/** The key's queued or processing jobs, counted up to `cap`. */
export async function countJobsInFlight(db: D1Database, keyId: string, cap: number): Promise<number> {
	const row = await db
		.prepare(
			`SELECT count(*) AS n FROM (SELECT 1 FROM jobs
				WHERE key_id = ?1 AND status IN ('queued', 'processing') LIMIT ?2)`,
		)
		.bind(keyId, cap)
		.first()
		.then(parseRow(CountRow));
	return row?.n ?? 0;
}
