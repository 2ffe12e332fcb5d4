/**
 * What follows one attempt of a delivery (docs/api.md), decided from the attempt's outcome and the
 * message's delivery count alone: done; retried after a delay (exponential backoff with jitter, or
 * longer when the endpoint's Retry-After asks for it); or failed for good (a refusal, a 410, which
 * also disables the subscription, or a retryable failure on the last delivery the queue allows).
 */
import { type BackoffPolicy, backoffSeconds } from "../../shared/queue/backoff";
import { MAX_DELAY_SECONDS } from "../../shared/queue/runner";
import type { AttemptOutcome } from "./attempt";

export interface RetryPolicy extends BackoffPolicy {
	/** The queue's max_retries: delivery `maxRetries + 1` is the last, so it fails instead of retrying. */
	maxRetries: number;
}

export { MAX_DELAY_SECONDS };

export type NextStep =
	| { kind: "delivered" }
	| { kind: "retry"; delaySeconds: number }
	| { kind: "failed"; error: string; disableSubscription: boolean };

/** `attempts` is the message's delivery count (1 on the first). */
export function nextStep(
	outcome: AttemptOutcome,
	attempts: number,
	policy: RetryPolicy,
	random: () => number = Math.random,
): NextStep {
	switch (outcome.kind) {
		case "delivered":
			return { kind: "delivered" };
		case "gone":
			return { kind: "failed", error: outcome.error, disableSubscription: true };
		case "rejected":
			return { kind: "failed", error: outcome.error, disableSubscription: false };
		case "retryable": {
			if (attempts > policy.maxRetries) {
				return {
					kind: "failed",
					error: `${outcome.error}; gave up after ${attempts} attempts`,
					disableSubscription: false,
				};
			}
			const backoff = backoffSeconds(attempts, policy, random);
			const asked = outcome.retryAfterSeconds ?? 0;
			return { kind: "retry", delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(backoff, asked)) };
		}
	}
}
