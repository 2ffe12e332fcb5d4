/**
 * `r2c events`: the caller's events (GET /v1/events) as JSON lines on stdout, one
 * `{"id","type","data"}` a line, until Ctrl-C; reconnects from the last id when the connection
 * drops. Also what `--wait` of `upload` and `batch create` follow (`openEvents`).
 */
import { followEvents, type StreamEvent } from "../client/events.ts";
import type { Context } from "./context.ts";

export interface EventsOptions {
	batch?: string;
	prefix?: string;
	types?: string;
	after?: string;
}

/**
 * Follows the stream in the background: `onEvent` for each event. `opened` resolves once the
 * stream is open (true) or could not be opened (false, with the reason in `error`), so that a
 * caller knows whether to fall back to polling. `stop()` closes it.
 */
export function openEvents(ctx: Context, query: Record<string, string | undefined>, onEvent: (e: StreamEvent) => void) {
	const abort = new AbortController();
	let open: (ok: boolean) => void = () => {};
	const opened = new Promise<boolean>((resolve) => {
		open = resolve;
	});
	const state: { error: unknown } = { error: null };
	const done = (async () => {
		try {
			const events = followEvents({
				baseUrl: ctx.apiUrl,
				token: ctx.token,
				query,
				signal: abort.signal,
				onOpen: () => open(true),
			});
			for await (const event of events) onEvent(event);
		} catch (err) {
			state.error = err;
		} finally {
			open(false);
		}
	})();
	return {
		opened,
		state,
		stop: async () => {
			abort.abort();
			await done;
		},
	};
}

export async function printEvents(ctx: Context, options: EventsOptions): Promise<void> {
	const query = { batch_id: options.batch, prefix: options.prefix, types: options.types };
	const abort = new AbortController();
	process.once("SIGINT", () => abort.abort());
	const events = followEvents({
		baseUrl: ctx.apiUrl,
		token: ctx.token,
		query,
		after: options.after,
		signal: abort.signal,
	});
	for await (const event of events) process.stdout.write(`${JSON.stringify(event)}\n`);
}
