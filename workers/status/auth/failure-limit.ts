/**
 * The limit on requests without a valid token, per client address (auth/client-address.ts):
 * AUTH_FAILURE_LIMIT_PER_MINUTE with a burst of AUTH_FAILURE_BURST, kept by the address's
 * AuthFailureLimiter. Failures are what is counted, not attempts, so an address's valid requests
 * never use it up; and the address is asked before a token is looked up, so once its failures are
 * spent a flood of random tokens costs a Durable Object call each, not a D1 query. A token that
 * authenticated from the address before is let through to its lookup all the same: a key in use
 * is not refused because of the random tokens sent beside it.
 */
import type { RatePolicy } from "../../../shared/gcra";
import { ApiError } from "../api-error";
import { readSettings } from "../settings";
import { clientAddress } from "./client-address";

export const AUTH_FAILURE_CODE = "too_many_auth_failures";

function refused(policy: RatePolicy, address: string, retryAfterMs: number): ApiError {
	const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
	return new ApiError(
		429,
		AUTH_FAILURE_CODE,
		`Too many requests without a valid token from this address: at most ${policy.requestsPerMinute} a minute`,
		{ address, limit_per_minute: policy.requestsPerMinute, burst: policy.burst, retry_after_seconds: seconds },
		{ "Retry-After": String(seconds) },
	);
}

/** The failure limit of the address a request came from. */
export function failureLimit(env: StatusEnv, headers: Headers) {
	const settings = readSettings(env);
	const policy: RatePolicy = {
		requestsPerMinute: settings.AUTH_FAILURE_LIMIT_PER_MINUTE,
		burst: settings.AUTH_FAILURE_BURST,
		maxWaitMs: 0,
	};
	const address = clientAddress(headers);
	const limiter = env.AUTH_FAILURE_LIMITER.getByName(address);
	return {
		/** Before a token is checked; throws the 429 when the address has no failures left. Resolves to whether the token worked here before. */
		async admit(digest: string): Promise<boolean> {
			const admission = await limiter.admit(policy, digest);
			if (admission.kind === "refused") throw refused(policy, address, admission.retryAfterMs);
			return admission.trusted;
		},
		/** Counts a request without a valid token; throws the 429 when that was one too many. */
		async failed(digest: string | null): Promise<void> {
			const reservation = await limiter.fail(policy, digest);
			if (reservation.kind === "refused") throw refused(policy, address, reservation.retryAfterMs);
		},
		trust: (digest: string): Promise<void> => limiter.trust(digest),
	};
}
