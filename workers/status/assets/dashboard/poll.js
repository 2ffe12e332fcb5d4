// @ts-check
/**
 * Live views poll the API: `poll(signal, ms, fn)` runs `fn` now and then `ms` after each run ends
 * (never two at once), pauses while the tab is hidden, backs off while the API fails, and stops
 * for good when `signal` aborts (the view was left). `refresh()` runs it again at once.
 */

/**
 * @param {AbortSignal} signal
 * @param {number} ms
 * @param {() => Promise<void>} fn
 * @param {(error: unknown) => void} [onError]
 * @returns {{ refresh: () => void }}
 */
export function poll(signal, ms, fn, onError) {
	/** @type {ReturnType<typeof setTimeout> | undefined} */
	let timer;
	let running = false;
	let again = false;
	let failures = 0;

	async function run() {
		clearTimeout(timer);
		if (signal.aborted) return;
		if (running) {
			again = true;
			return;
		}
		if (document.hidden) return; // resumed by visibilitychange
		running = true;
		try {
			await fn();
			failures = 0;
		} catch (err) {
			failures++;
			if (!signal.aborted) onError?.(err);
		} finally {
			running = false;
		}
		if (signal.aborted) return;
		if (again) {
			again = false;
			void run();
			return;
		}
		timer = setTimeout(run, ms * Math.min(2 ** failures, 8));
	}

	const onVisible = () => {
		if (!document.hidden) void run();
	};
	document.addEventListener("visibilitychange", onVisible);
	signal.addEventListener("abort", () => {
		clearTimeout(timer);
		document.removeEventListener("visibilitychange", onVisible);
	});
	void run();
	return { refresh: () => void run() };
}
