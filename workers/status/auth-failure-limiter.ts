/**
 * The failed-authentication limiter of one client address (auth/failure-limit.ts): a Durable
 * Object per address, so every isolate counts that address's failures on one GCRA schedule
 * (shared/gcra.ts). It also remembers the digests of tokens that authenticated from the address,
 * so that a key already working there is not refused with the random tokens sent beside it.
 */
import { type RatePolicy, type Reservation, SlotLimiter } from "../../shared/gcra";

/** Digests remembered per address: the keys of one office or server, not every key of the service. */
const TRUSTED_DIGESTS = 64;

/** Whether a request from the address may have its token checked, and whether that token worked here before. */
export type Admission = { kind: "admitted"; trusted: boolean } | { kind: "refused"; retryAfterMs: number };

export class AuthFailureLimiter extends SlotLimiter {
	/** Digests of tokens that authenticated from this address, least recent first. In memory, like the schedule. */
	private readonly trusted = new Set<string>();

	/**
	 * Before a token is checked. A token that worked here always may, free. Any other takes a failure
	 * slot now, in the same step as the check, so concurrent guesses cannot all pass one free slot;
	 * `trust` gives it back if the token authenticates.
	 */
	admit(policy: RatePolicy, digest: string): Admission {
		if (this.trusted.has(digest)) {
			this.remember(digest);
			return { kind: "admitted", trusted: true };
		}
		const slot = this.reserve(policy);
		return slot.kind === "refused" ? slot : { kind: "admitted", trusted: false };
	}

	/** A token admitted untrusted authenticated: its slot is given back and it is trusted from now on. */
	trust(policy: RatePolicy, digest: string): void {
		this.release(policy);
		this.remember(digest);
	}

	/** A trusted token failed (its key was revoked): forgotten, and counted as the failure it is. */
	distrust(policy: RatePolicy, digest: string): Reservation {
		this.trusted.delete(digest);
		return this.reserve(policy);
	}

	/** A request with no token, or a malformed `Authorization` header. */
	fail(policy: RatePolicy): Reservation {
		return this.reserve(policy);
	}

	private remember(digest: string): void {
		this.trusted.delete(digest);
		this.trusted.add(digest);
		for (const oldest of this.trusted) {
			if (this.trusted.size <= TRUSTED_DIGESTS) break;
			this.trusted.delete(oldest);
		}
	}
}
