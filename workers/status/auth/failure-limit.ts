/**
 * The limit on requests without a valid token, per client address (auth/client-address.ts):
 * AUTH_FAILURE_LIMIT_PER_MINUTE with a burst of AUTH_FAILURE_BURST, kept by the address's
 * AuthFailureLimiter. The address is asked before a token is looked up, and an unknown token takes
 * a failure slot there and then, so D1 sees at most the limit's worth of unknown tokens from one
 * address, however many are sent at once; the slot is given back when the token authenticates, so
 * an address's valid requests never use the limit up. A token that authenticated from the address
 * before is let through to its lookup all the same: a key in use is not refused because of the
 * random tokens sent beside it.
 */
import type { RatePolicy, Reservation } from "../../../shared/gcra";
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
	const check = (slot: Reservation) => {
		if (slot.kind === "refused") throw refused(policy, address, slot.retryAfterMs);
	};
	return {
		/**
		 * Before a token is checked: throws the 429 when the address has no failures left (a token that
		 * authenticated from it before excepted). Resolves to whether the token is such a one.
		 */
		async admit(digest: string): Promise<boolean> {
			const admission = await limiter.admit(policy, digest);
			if (admission.kind === "refused") throw refused(policy, address, admission.retryAfterMs);
			return admission.trusted;
		},
		/** A request without a token; throws the 429 when it was one too many. */
		missing: async (): Promise<void> => check(await limiter.fail(policy)),
		/** A token admitted as trusted did not authenticate (an untrusted one was counted when admitted). */
		distrust: async (digest: string): Promise<void> => check(await limiter.distrust(policy, digest)),
		/** An untrusted token authenticated: its failure slot is given back. */
		trust: (digest: string): Promise<void> => limiter.trust(policy, digest),
	};
}
