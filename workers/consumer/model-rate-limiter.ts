/**
 * Paces model calls below the account's Workers AI rate limits, one per task type (Image-to-Text
 * 720 requests per minute, Text Generation 300) or per model where a model has its own. Consumer
 * invocations run concurrently (max_concurrency batches, each captioning several messages at
 * once), so each limit is one Durable Object that every invocation asks for a slot: a reservation
 * says how long to wait before calling the model. Waiting in the Worker costs no model capacity,
 * whereas a 3021 answer costs a queue retry of at least ten seconds.
 *
 * The algorithm is GCRA (a token bucket kept as one "theoretical arrival time"): slots are spaced
 * 60 000 / rpm ms apart, and up to `burst` calls may start together after an idle spell. Any minute
 * then holds at most rpm + burst calls, so the pace is the limit less the burst and a 2 % margin
 * for timer and network jitter (`pacingRate`).
 */
import { DurableObject } from "cloudflare:workers";
import { TransientError } from "../../shared/jobs/errors";
import type { Pacer } from "../../shared/models/chain";
import { type RateLimits, rateLimitFor } from "../../shared/models/rate-limits";

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
 * One instance (by name) per rate limit: a task type or a model id. State is in memory only: a
 * restart forgets at most one burst. A changed policy (new configuration) starts a fresh schedule.
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

/** Calls per minute that keep every minute (rate + burst calls at most) under `limit`, with a 2 % margin. */
export function pacingRate(limit: number, burst: number): number {
	return Math.max(1, limit - burst - Math.ceil(limit * 0.02));
}

export interface PacingSettings {
	/** The platform's limits per task type or model id; a model under none is not paced. */
	limits: RateLimits;
	burst: number;
	maxWaitMs: number;
}

export interface PacingEnv {
	MODEL_RATE_LIMITER: DurableObjectNamespace<ModelRateLimiter>;
}

/**
 * What the model chain awaits before each call: a slot from the limiter of the model's rate limit
 * (none when no limit applies). A slot too far away becomes a TransientError, so the message is
 * retried later with its job back in the queue instead of holding the invocation.
 */
export function modelPacer(env: PacingEnv, pacing: PacingSettings): Pacer {
	return async (adapter) => {
		const limit = rateLimitFor(adapter, pacing.limits);
		if (!limit) return;
		const policy: RatePolicy = {
			requestsPerMinute: pacingRate(limit.perMinute, pacing.burst),
			burst: pacing.burst,
			maxWaitMs: pacing.maxWaitMs,
		};
		const reservation = await env.MODEL_RATE_LIMITER.getByName(limit.name).reserve(policy);
		if ("retryAfterMs" in reservation) {
			throw new TransientError(
				`Pacing ${limit.name} below ${limit.perMinute} requests per minute: next slot in ${reservation.retryAfterMs} ms`,
				Math.ceil(reservation.retryAfterMs / 1000),
			);
		}
		if (reservation.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, reservation.waitMs));
	};
}
