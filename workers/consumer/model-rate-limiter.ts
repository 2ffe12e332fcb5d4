/**
 * Paces model calls below the account's Workers AI rate limit (720 requests per minute for
 * image-to-text). Consumer invocations run concurrently (max_concurrency batches, each captioning
 * several messages at once), so the limiter is one Durable Object that every invocation asks for a
 * slot: a reservation says how long to wait before calling the model. Waiting in the Worker costs
 * no model capacity, whereas a 3021 answer costs a queue retry of at least ten seconds.
 *
 * The algorithm is GCRA (a token bucket kept as one "theoretical arrival time"): slots are spaced
 * 60 000 / rpm ms apart, and up to `burst` calls may start together after an idle spell.
 */
import { DurableObject } from "cloudflare:workers";
import { TransientError } from "../../shared/jobs/errors";

export interface RatePolicy {
	requestsPerMinute: number;
	/** Calls that may start at once after an idle spell. */
	burst: number;
	/** A slot further away than this is not reserved: the caller retries the message later instead. */
	maxWaitMs: number;
}

export type Reservation = { waitMs: number } | { retryAfterMs: number };

/**
 * Reserves the next slot at `now` given the theoretical arrival time `tat` (0 when unused).
 * Returns the reservation and the new `tat` (unchanged when nothing was reserved).
 */
export function reserveSlot(tat: number, now: number, policy: RatePolicy): { reservation: Reservation; tat: number } {
	const interval = 60_000 / policy.requestsPerMinute;
	const tolerance = (Math.max(1, policy.burst) - 1) * interval;
	const arrival = Math.max(tat, now);
	const start = Math.max(now, arrival - tolerance);
	const waitMs = Math.ceil(start - now);
	if (waitMs > policy.maxWaitMs) return { reservation: { retryAfterMs: waitMs }, tat };
	return { reservation: { waitMs }, tat: arrival + interval };
}

/**
 * One instance (by name) per rate limit, e.g. "workers-ai". State is in memory only: a restart
 * forgets at most one burst. A changed policy (new configuration) starts a fresh schedule.
 */
export class ModelRateLimiter extends DurableObject {
	private tat = 0;
	private policyKey = "";

	reserve(policy: RatePolicy): Reservation {
		const key = `${policy.requestsPerMinute}/${policy.burst}/${policy.maxWaitMs}`;
		if (key !== this.policyKey) {
			this.policyKey = key;
			this.tat = 0;
		}
		const { reservation, tat } = reserveSlot(this.tat, Date.now(), policy);
		this.tat = tat;
		return reservation;
	}
}

export interface PacingEnv {
	MODEL_RATE_LIMITER: DurableObjectNamespace<ModelRateLimiter>;
}

/**
 * What the model chain awaits before each call: nothing when pacing is off, otherwise a slot from
 * the shared limiter. A slot too far away becomes a TransientError, so the message is retried
 * later with its job back in the queue instead of holding the invocation.
 */
export function modelPacer(env: PacingEnv, policy: RatePolicy | null): (() => Promise<void>) | undefined {
	if (policy === null) return undefined;
	const limiter = env.MODEL_RATE_LIMITER.getByName("workers-ai");
	return async () => {
		const reservation = await limiter.reserve(policy);
		if ("retryAfterMs" in reservation) {
			throw new TransientError(
				`Pacing below ${policy.requestsPerMinute} model requests per minute: next slot in ${reservation.retryAfterMs} ms`,
				Math.ceil(reservation.retryAfterMs / 1000),
			);
		}
		if (reservation.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, reservation.waitMs));
	};
}
