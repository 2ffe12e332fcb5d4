/**
 * The consumer's recovery sweep: stalled jobs and stalled batch listings, and the retention sweep
 * (rows past their retention archived and deleted: retention.ts). The cron runs it with
 * the production cut-offs; `npm run dev` runs it through the `ConsumerRecovery` entrypoint (bound
 * to the status Worker only locally) at start and periodically, with its own.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { type ConsumerSweepReport, type RecoveryCutoffs, staleBefore } from "../../shared/recovery";
import { LISTING_STALL_MS, sweepStalledListings } from "./batch-lister";
import { readSettings } from "./config";
import { sweepRetention } from "./retention";
import { QUEUED_STALL_MS, sweepStalledJobs } from "./sweeper";

export async function recoverConsumer(
	env: ConsumerEnv,
	cutoffs: RecoveryCutoffs = {},
	now = Date.now(),
): Promise<ConsumerSweepReport> {
	const settings = readSettings(env);
	const [jobs, listings, retention] = await Promise.all([
		sweepStalledJobs(env, settings, now, {
			queuedBefore: staleBefore(cutoffs, now, QUEUED_STALL_MS),
			claimedBefore: cutoffs.restarted_at ?? 0,
		}),
		sweepStalledListings(env, now, staleBefore(cutoffs, now, LISTING_STALL_MS)),
		sweepRetention(env, settings, now),
	]);
	return {
		jobs_requeued: jobs.requeued,
		jobs_failed: jobs.failed,
		write_backs_resent: jobs.writeBacks,
		listings_resent: listings,
		truncated: jobs.truncated,
		retention,
	};
}

export class ConsumerRecovery extends WorkerEntrypoint<ConsumerEnv> {
	sweep(cutoffs: RecoveryCutoffs): Promise<ConsumerSweepReport> {
		return recoverConsumer(this.env, cutoffs);
	}
}
