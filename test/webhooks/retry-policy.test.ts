/** What follows one delivery attempt, as a pure function of its outcome and the delivery count. */
import { describe, expect, it } from "vitest";
import type { AttemptOutcome } from "../../workers/webhooks/attempt";
import { MAX_DELAY_SECONDS, nextStep, type RetryPolicy } from "../../workers/webhooks/retry-policy";

const policy: RetryPolicy = { maxRetries: 8, baseSeconds: 5, maxSeconds: 3600 };
const serverError: AttemptOutcome = {
	kind: "retryable",
	statusCode: 503,
	error: "The endpoint answered 503",
	retryAfterSeconds: null,
};
/** Jitter at its low end (half the ceiling) and its high end (the whole ceiling). */
const low = () => 0;
const high = () => 1;

describe("nextStep", () => {
	it("a 2xx is delivered, whatever the delivery count", () => {
		expect(nextStep({ kind: "delivered", statusCode: 204 }, 1, policy)).toEqual({ kind: "delivered" });
		expect(nextStep({ kind: "delivered", statusCode: 200 }, 99, policy)).toEqual({ kind: "delivered" });
	});

	it("a delivery at exactly the maximum attempt is still retried; the one after it fails", () => {
		expect(nextStep(serverError, policy.maxRetries, policy, low)).toMatchObject({ kind: "retry" });
		expect(nextStep(serverError, policy.maxRetries + 1, policy, low)).toEqual({
			kind: "failed",
			error: "The endpoint answered 503; gave up after 9 attempts",
			disableSubscription: false,
		});
	});

	it("backs off exponentially with equal jitter, capped at maxSeconds", () => {
		// Delivery n waits between half and all of 5 × 2^(n-1) seconds.
		expect(nextStep(serverError, 1, policy, low)).toEqual({ kind: "retry", delaySeconds: 3 });
		expect(nextStep(serverError, 1, policy, high)).toEqual({ kind: "retry", delaySeconds: 5 });
		expect(nextStep(serverError, 4, policy, low)).toEqual({ kind: "retry", delaySeconds: 20 });
		expect(nextStep(serverError, 4, policy, high)).toEqual({ kind: "retry", delaySeconds: 40 });
		const capped = { ...policy, maxRetries: 20 };
		expect(nextStep(serverError, 15, capped, high)).toEqual({ kind: "retry", delaySeconds: 3600 });
	});

	it("waits as long as Retry-After asks when that is longer than the backoff, never over 12 hours", () => {
		const asks = (seconds: number): AttemptOutcome => ({ ...serverError, statusCode: 429, retryAfterSeconds: seconds });
		expect(nextStep(asks(120), 1, policy, high)).toEqual({ kind: "retry", delaySeconds: 120 });
		expect(nextStep(asks(1), 4, policy, high)).toEqual({ kind: "retry", delaySeconds: 40 });
		expect(nextStep(asks(7 * 24 * 3600), 1, policy, high)).toEqual({ kind: "retry", delaySeconds: MAX_DELAY_SECONDS });
	});

	it("a refusal fails at once; a 410 also disables the subscription", () => {
		const refused: AttemptOutcome = { kind: "rejected", statusCode: 400, error: "The endpoint answered 400" };
		expect(nextStep(refused, 1, policy)).toEqual({
			kind: "failed",
			error: "The endpoint answered 400",
			disableSubscription: false,
		});
		const gone: AttemptOutcome = { kind: "gone", statusCode: 410, error: "The endpoint answered 410 Gone" };
		expect(nextStep(gone, 1, policy)).toEqual({
			kind: "failed",
			error: "The endpoint answered 410 Gone",
			disableSubscription: true,
		});
	});
});
