/** Polling for tests that go through the real queues: results arrive a little later. */

/**
 * Calls `probe` every 100 ms until it returns a value, and returns that value; throws once
 * `timeoutMs` has passed, saying what did not happen.
 */
export async function until<T>(
	what: string | (() => string),
	probe: () => Promise<T | null | undefined>,
	timeoutMs = 15_000,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== null && value !== undefined) return value;
		if (Date.now() > deadline) {
			throw new Error(`${typeof what === "function" ? what() : what} (waited ${timeoutMs} ms)`);
		}
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}
