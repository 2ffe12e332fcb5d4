/**
 * `npm run dev`'s stand-in for the production crons, which do not fire under `wrangler dev`: it
 * runs the same recovery sweeps (stalled jobs and listings in the consumer, the webhook outbox and
 * stalled deliveries in the webhooks Worker) and the consumer's retention sweep through `POST /v1/admin/sweep`, which calls the two
 * Workers' recovery entrypoints (docs/recovery.md).
 *
 * - At start, with `restarted_at`: whatever the previous run left in flight (a queued job whose
 *   message died with it, a job or delivery its killed process held under a lease, a retry
 *   waiting in a delayed message, an undispatched event, a listing page) is sent again at once,
 *   not after the production staleness of 5 to 10 minutes.
 * - Then every `everyMs`, with `stale_after_ms`: the crons' sweep with a shorter staleness.
 *
 * Messages sent twice are harmless: job leases and the delivery claim make them idempotent.
 */
import { z } from "zod";

const SweepReport = z.object({
	consumer: z.object({
		jobs_requeued: z.number(),
		jobs_failed: z.number(),
		write_backs_resent: z.number(),
		listings_resent: z.number(),
		retention: z.object({ jobs_deleted: z.number(), webhook_events_deleted: z.number(), batches_deleted: z.number() }),
	}),
	webhooks: z.object({ events_resent: z.number(), deliveries_resent: z.number() }),
});
type SweepReport = z.infer<typeof SweepReport>;

export interface RecoveryOptions {
	/** The status API, e.g. http://localhost:8787. */
	url: string;
	token: string;
	/** When this `npm run dev` started (before wrangler): anything touched before belongs to the previous run. */
	restartedAt: number;
	everyMs: number;
	staleAfterMs: number;
	log: (line: string) => void;
}

async function sweep(options: RecoveryOptions, cutoffs: Record<string, number>): Promise<SweepReport> {
	const res = await fetch(`${options.url}/v1/admin/sweep`, {
		method: "POST",
		headers: { Authorization: `Bearer ${options.token}`, "Content-Type": "application/json" },
		body: JSON.stringify(cutoffs),
		signal: AbortSignal.timeout(120_000),
	});
	if (!res.ok) throw new Error(`POST /v1/admin/sweep answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
	return SweepReport.parse(await res.json());
}

function describe(r: SweepReport): string | null {
	const parts = [
		[r.consumer.jobs_requeued, "jobs re-queued"],
		[r.consumer.jobs_failed, "jobs failed (attempts used up)"],
		[r.consumer.write_backs_resent, "write-backs resumed"],
		[r.consumer.listings_resent, "batch listings resumed"],
		[r.webhooks.events_resent, "webhook events re-sent"],
		[r.webhooks.deliveries_resent, "deliveries re-sent"],
		[r.consumer.retention.jobs_deleted, "jobs past retention deleted"],
		[r.consumer.retention.webhook_events_deleted, "webhook events past retention deleted"],
		[r.consumer.retention.batches_deleted, "batches past retention deleted"],
	] as const;
	const done = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}`);
	return done.length > 0 ? done.join(", ") : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the start-up sweep once the API answers (`ready` resolves), then the periodic one until
 * `stop()`. A failing sweep is reported and tried again at the next period (the start-up sweep a
 * few times first, as the Workers may still be loading).
 */
export function startRecovery(options: RecoveryOptions, ready: Promise<boolean>): { stop(): void } {
	let stopped = false;
	let timer: NodeJS.Timeout | undefined;
	const periodic = async () => {
		if (stopped) return;
		try {
			const what = describe(await sweep(options, { stale_after_ms: options.staleAfterMs }));
			if (what) options.log(`recovery sweep: ${what}`);
		} catch (err) {
			if (!stopped) options.log(`recovery sweep failed (next in ${options.everyMs / 1000} s): ${String(err)}`);
		}
		if (!stopped) timer = setTimeout(periodic, options.everyMs);
	};
	void (async () => {
		if (!(await ready) || stopped) return;
		for (let attempt = 1; !stopped; attempt++) {
			try {
				const what = describe(await sweep(options, { restarted_at: options.restartedAt }));
				options.log(`recovery at start: ${what ?? "nothing was left in flight"}`);
				break;
			} catch (err) {
				if (attempt >= 10) {
					options.log(`recovery at start failed (the periodic sweep will retry): ${String(err)}`);
					break;
				}
				await sleep(1000);
			}
		}
		if (!stopped) timer = setTimeout(periodic, options.everyMs);
	})();
	return {
		stop() {
			stopped = true;
			clearTimeout(timer);
		},
	};
}
