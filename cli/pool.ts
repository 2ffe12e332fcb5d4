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
