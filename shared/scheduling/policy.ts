/**
 * Which waiting caption gets a rate limit's next slot (pure; the scheduler Durable Object keeps the
 * waiters and the clock, ./scheduler.ts):
 *
 * - the interactive lane first, unless the batch lane has work waiting and took less than its
 *   minimum share of this limit's slots over the last minute: interactive work cannot stall a
 *   backfill for ever, and when the interactive lane is idle the batch lane takes every slot;
 * - within the batch lane, the API key that took the fewest slots over the last minute (on any
 *   limit), so concurrent batches of different keys progress at equal rates whatever order their
 *   messages arrived in, and the batches of one key share that key's turn;
 * - within a lane (and a key), the caption that has waited longest.
 */
import type { Lane } from "./lanes";

export interface Waiter {
	/** Arrival order. */
	seq: number;
	lane: Lane;
	key: string | null;
	/** Limit names this waiter accepts a slot of. */
	limits: readonly string[];
}

export interface RecentGrant {
	at: number;
	lane: Lane;
	limit: string;
	key: string | null;
}

/** The look-back of shares and key turns. */
export const SHARE_WINDOW_MS = 60_000;

const oldest = <W extends Waiter>(waiters: W[]): W | undefined =>
	waiters.reduce<W | undefined>((a, w) => (a === undefined || w.seq < a.seq ? w : a), undefined);

/** The batch lane's fraction of `limit`'s grants in `recent` (0 when it had none). */
export function batchShare(recent: readonly RecentGrant[], limit: string): number {
	const onLimit = recent.filter((g) => g.limit === limit);
	if (onLimit.length === 0) return 0;
	return onLimit.filter((g) => g.lane === "batch").length / onLimit.length;
}

/** The waiter that gets `limit`'s next slot, or undefined when none accepts that limit. */
export function chooseWaiter<W extends Waiter>(
	waiters: readonly W[],
	limit: string,
	recent: readonly RecentGrant[],
	minBatchShare: number,
): W | undefined {
	const eligible = waiters.filter((w) => w.limits.includes(limit));
	const interactive = eligible.filter((w) => w.lane === "interactive");
	const batch = eligible.filter((w) => w.lane === "batch");
	if (batch.length === 0) return oldest(interactive);
	if (interactive.length > 0 && batchShare(recent, limit) >= minBatchShare) return oldest(interactive);
	return nextKeyTurn(batch, recent);
}

/** Of the batch waiters, the oldest of the key with the fewest recent batch grants. */
function nextKeyTurn<W extends Waiter>(batch: W[], recent: readonly RecentGrant[]): W | undefined {
	const taken = new Map<string | null, number>();
	for (const g of recent) if (g.lane === "batch") taken.set(g.key, (taken.get(g.key) ?? 0) + 1);
	let best: W | undefined;
	let bestTaken = Number.POSITIVE_INFINITY;
	for (const w of batch) {
		const t = taken.get(w.key) ?? 0;
		if (t < bestTaken || (t === bestTaken && best !== undefined && w.seq < best.seq)) {
			best = w;
			bestTaken = t;
		}
	}
	return best;
}
