/**
 * The real queues' work in progress in this runtime: test/harness.ts counts each batch it hands to
 * a Worker's queue handler, and each promise that handler leaves to `waitUntil`, until it settles.
 * test/support/quiet.ts reads the counts to wait until the files before have no work left running.
 */

export const queueWork = {
	/** Batches and `waitUntil` promises not settled yet. */
	running: 0,
	/** Every one counted so far, settled or not: a change means work started meanwhile. */
	started: 0,
};

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
