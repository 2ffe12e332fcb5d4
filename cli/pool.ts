/** Bounded concurrency for bulk commands: `fn` on every item, at most `limit` at a time. */

export async function forEachLimit<T>(
	items: readonly T[],
	limit: number,
	fn: (item: T) => Promise<void>,
	/** Checked before each item: once true, no further item starts. */
	stopped: () => boolean = () => false,
): Promise<void> {
	let next = 0;
	const worker = async () => {
		while (next < items.length && !stopped()) {
			const item = items[next++] as T;
			await fn(item);
		}
	};
	await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until `woken` settles or `ms` pass, whichever is first, and clears the timer either way: a
 * timer left running holds the process open, so a command that had finished would exit only when
 * it fired (`batch create --wait` a minute after its batch ended).
 */
export async function sleepUnlessWoken(woken: Promise<unknown>, ms: number): Promise<void> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	try {
		await Promise.race([woken, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
	} finally {
		clearTimeout(timer);
	}
}
