/**
 * The real queues' work in progress in this runtime: test/harness.ts counts each batch it hands to
 * a Worker's queue handler, and each promise that handler leaves to `waitUntil`, until it settles,
 * and notes when a message sent back with a delay comes back. test/support/quiet.ts reads them to
 * wait until the files before have no work left running or to come.
 */

export const queueWork = {
	/** Batches and `waitUntil` promises not settled yet. */
	running: 0,
	/** Every one counted so far, settled or not: a change means work started meanwhile. */
	started: 0,
	/** When the last message sent back to a queue with a delay comes back (ms since the epoch; 0: none). */
	delayedUntil: 0,
};

/** Notes a message sent back to its queue for `delaySeconds`: it is work to come until then. */
export function noteDelayedRetry(delaySeconds: number | undefined): void {
	if (!delaySeconds || delaySeconds <= 0) return;
	queueWork.delayedUntil = Math.max(queueWork.delayedUntil, Date.now() + delaySeconds * 1000);
}

/** Counts `work` as running until it settles; returns a promise that settles as it does. */
export function trackQueueWork<T>(work: Promise<T>): Promise<T> {
	queueWork.started++;
	queueWork.running++;
	return work.finally(() => {
		queueWork.running--;
	});
}

/** `ctx` with every promise passed to its `waitUntil` counted as queue work. */
export function trackingContext(ctx: ExecutionContext): ExecutionContext {
	return new Proxy(ctx, {
		get(target, property) {
			if (property === "waitUntil") return (promise: Promise<unknown>) => target.waitUntil(trackQueueWork(promise));
			const value: unknown = Reflect.get(target, property, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}
