/**
 * Typed failure of a job: domain code throws `JobFailure` with a stable code; the consumer turns
 * it into a failed job row. Nothing here is retried: transient trouble is `TransientError`.
 */
import type { JobErrorCode } from "./schema";

export class JobFailure extends Error {
	override readonly name = "JobFailure";
	constructor(
		readonly code: JobErrorCode,
		message: string,
	) {
		super(message);
	}
}

/** A failure worth another attempt later (model capacity, rate limit, network). */
export class TransientError extends Error {
	override readonly name = "TransientError";
	constructor(
		message: string,
		/** The smallest delay worth waiting before the next attempt, when known. */
		readonly minDelaySeconds = 0,
	) {
		super(message);
	}
}
