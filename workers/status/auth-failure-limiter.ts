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

	/** Before a token is checked: a token that worked here always may; any other while failures are left. */
	admit(policy: RatePolicy, digest: string): Admission {
		if (this.trusted.has(digest)) {
			this.trust(digest);
			return { kind: "admitted", trusted: true };
		}
		const next = this.peek(policy);
		return next.kind === "refused" ? next : { kind: "admitted", trusted: false };
	}

	/** A request without a valid token: takes a failure slot, and forgets the token if it had worked. */
	fail(policy: RatePolicy, digest: string | null): Reservation {
		if (digest !== null) this.trusted.delete(digest);
		return this.reserve(policy);
	}

	/** A token that authenticated from this address. */
	trust(digest: string): void {
		this.trusted.delete(digest);
		this.trusted.add(digest);
		for (const oldest of this.trusted) {
			if (this.trusted.size <= TRUSTED_DIGESTS) break;
			this.trusted.delete(oldest);
		}
	}
}
