/**
 * GCRA (a token bucket kept as one "theoretical arrival time"), shared by the lane scheduler's pacing
 * of model calls (shared/scheduling/scheduler.ts), the status API's per-key request limit
 * (workers/status/quotas.ts) and its per-address limit of failed authentication
 * (workers/status/auth/failure-limit.ts), and the Durable Object they keep their schedule in. Slots are spaced 60 000 / rpm ms apart and up to `burst` may be
 * taken at once after an idle spell; any minute then holds at most rpm + burst slots.
 */
import { DurableObject } from "cloudflare:workers";

export interface RatePolicy {
	requestsPerMinute: number;
	/** Calls that may start at once after an idle spell. */
	burst: number;
	/** A slot further away than this is not reserved: the caller is told when to come back instead. */
	maxWaitMs: number;
}

/** A slot `waitMs` from now, or none reserved: come back in `retryAfterMs`. */
export type Reservation = { kind: "slot"; waitMs: number } | { kind: "refused"; retryAfterMs: number };

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
	if (waitMs > policy.maxWaitMs) return { reservation: { kind: "refused", retryAfterMs: waitMs }, tat };
	return { reservation: { kind: "slot", waitMs }, tat: arrival + interval };
}

/** A policy's identity: a limiter whose policy changed (new configuration) starts a fresh schedule. */
const policyKey = (policy: RatePolicy): string => `${policy.requestsPerMinute}/${policy.burst}/${policy.maxWaitMs}`;

/**
 * One schedule (by the instance's name) that every caller takes its slots from. State is in memory
 * only: a limiter is evicted only after an idle spell, so a restart forgets at most one burst.
 */
export class SlotLimiter extends DurableObject {
	private tat = 0;
	private policy = "";

	reserve(policy: RatePolicy): Reservation {
		this.follow(policy);
		const { reservation, tat } = reserveSlot(this.tat, Date.now(), policy);
		this.tat = tat;
		return reservation;
	}

	/** Gives back a slot taken with `reserve` under the same policy (the work it stood for did not count). */
	release(policy: RatePolicy): void {
		this.follow(policy);
		this.tat = Math.max(0, this.tat - 60_000 / policy.requestsPerMinute);
	}

	private follow(policy: RatePolicy): void {
		const key = policyKey(policy);
		if (key !== this.policy) {
			this.policy = key;
			this.tat = 0;
		}
	}
}
