/**
 * A job's lease kept for as long as its attempt calls models. The claim gives the attempt
 * LEASE_SECONDS; an attempt can outlast that (a slot waited for at each model of the chain, slow
 * answers, a repair), and the stalled-job sweep then takes the job for one whose consumer died:
 * another delivery claims it and calls a model again, billed twice. So before each model call a
 * lease with less than half its time left is renewed (one D1 write, only for an attempt slower than
 * half a lease); a lease another delivery has taken since stops the attempt before the call.
 */

import type { JobRow } from "../../shared/jobs/schema";
import { renewLease } from "../../shared/jobs/store";
import type { Pacer, Route } from "../../shared/models/chain";

export function keepingLease(
	route: Route,
	db: D1Database,
	job: Pick<JobRow, "id" | "lease_token" | "lease_expires_at">,
	leaseMs: number,
	clock: () => number = Date.now,
): Route {
	let until = job.lease_expires_at ?? 0;
	const pace: Pacer = async (adapter) => {
		const paced = await route.pace(adapter);
		if (paced.kind !== "go") return paced;
		const now = clock();
		if (until - now >= leaseMs / 2) return paced;
		if (job.lease_token === null || !(await renewLease(db, job.id, job.lease_token, now + leaseMs))) {
			return { kind: "later", message: "Another delivery holds the job now: its lease ran out", retryAfterSeconds: 1 };
		}
		until = now + leaseMs;
		return paced;
	};
	return { ...route, pace };
}
