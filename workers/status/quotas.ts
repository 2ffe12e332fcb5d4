/**
 * Quotas of API keys (docs/api.md, "Quotas and limits"): a request rate per key (RATE_LIMIT_PER_MINUTE with a burst of
 * RATE_LIMIT_BURST, kept by the key's ApiKeyRateLimiter) and a cap on the key's jobs in flight
 * (MAX_JOBS_IN_FLIGHT queued or processing jobs made by its uploads, `POST /v1/jobs` and its
 * batches), and at most MAX_OPEN_BATCHES_PER_KEY batches listing or running (../batches/store.ts).
 * All answer 429 with `Retry-After`. The admin token is the operator's and has none of them.
 */
import type { MiddlewareHandler } from "hono";
import { countJobsInFlight } from "../../shared/jobs/in-flight";
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

export { countJobsInFlight };

/**
 * Refuses a new job when the key already has MAX_JOBS_IN_FLIGHT queued or processing (its batches'
 * jobs included). Checked before the object is written, so concurrent requests of one key may pass
 * it together; a batch never does (workers/consumer/batch-pages.ts checks in its commit).
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

/** What a client at the open-batch limit is told to wait: batches run for minutes. */
export const OPEN_BATCHES_RETRY_AFTER_SECONDS = 30;

/** The answer to a key that already has MAX_OPEN_BATCHES_PER_KEY batches listing or running. */
export const tooManyBatches = (limit: number) =>
	tooMany(
		"too_many_batches",
		`This API key already has ${limit} batches listing or running; the limit is ${limit}`,
		OPEN_BATCHES_RETRY_AFTER_SECONDS,
		{ limit },
	);
