/**
 * Paces model calls below the account's Workers AI rate limits, one per task type (Image-to-Text
 * 720 requests per minute, Text Generation 300) or per model where a model has its own. Consumer
 * invocations run concurrently (max_concurrency batches, each captioning several messages at
 * once), so each limit is one Durable Object that every invocation asks for a slot: a reservation
 * says how long to wait before calling the model. Waiting in the Worker costs no model capacity,
 * whereas a 3021 answer costs a queue retry of at least ten seconds.
 *
 * The algorithm is GCRA (shared/gcra.ts): any minute holds at most rpm + burst calls, so the pace
 * is the limit less the burst and a 2 % margin for timer and network jitter (`pacingRate`).
 */
import { type RatePolicy, type Reservation, reserveSlot, SlotLimiter } from "../../shared/gcra";
import type { Pace, Pacer } from "../../shared/models/chain";
import { type RateLimits, rateLimitFor } from "../../shared/models/rate-limits";

export { type RatePolicy, type Reservation, reserveSlot };

/** One instance (by name) per rate limit: a task type or a model id. */
export class ModelRateLimiter extends SlotLimiter {}

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
 * (none when no limit applies). A slot too far away is a "later", so the message is
 * retried later with its job back in the queue instead of holding the invocation.
 */
const GO: Pace = { kind: "go" };

export function modelPacer(env: PacingEnv, pacing: PacingSettings): Pacer {
	return async (adapter) => {
		const limit = rateLimitFor(adapter, pacing.limits);
		if (!limit) return GO;
		const policy: RatePolicy = {
			requestsPerMinute: pacingRate(limit.perMinute, pacing.burst),
			burst: pacing.burst,
			maxWaitMs: pacing.maxWaitMs,
		};
		const reservation = await env.MODEL_RATE_LIMITER.getByName(limit.name).reserve(policy);
		if (reservation.kind === "refused") {
			return {
				kind: "later",
				message: `Pacing ${limit.name} below ${limit.perMinute} requests per minute: next slot in ${reservation.retryAfterMs} ms`,
				retryAfterSeconds: Math.ceil(reservation.retryAfterMs / 1000),
			};
		}
		if (reservation.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, reservation.waitMs));
		return GO;
	};
}
