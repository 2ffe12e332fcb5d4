/**
 * Retry delays for queue messages: exponential backoff with equal jitter, capped by the policy (and
 * always by MAX_DELAY_SECONDS in ./delays.ts, where the platform's limit is explained).
 */
export interface BackoffPolicy {
	baseSeconds: number;
	maxSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseSeconds: 2, maxSeconds: 300 };

/** Delay before the next delivery of a message that has been attempted `attempts` times. */
export function backoffSeconds(
	attempts: number,
	policy: BackoffPolicy = DEFAULT_BACKOFF,
	random: () => number = Math.random,
	minSeconds = 0,
): number {
	const ceiling = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.max(0, attempts - 1));
	// Equal jitter (half fixed, half random) spreads retries of a failed batch so they do not all return at once.
	return Math.max(minSeconds, Math.ceil(ceiling / 2 + (random() * ceiling) / 2));
}
