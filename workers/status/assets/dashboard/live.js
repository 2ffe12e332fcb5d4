// @ts-check
/**
 * Live views follow the event stream (GET /v1/events): one EventSource per signed-in tab, opened
 * with a short-lived stream token (POST /v1/events/tokens; EventSource cannot send the
 * Authorization header, and the token itself never goes in a URL). A view gets each event and
 * updates itself from the event's data, so a list is not fetched again while the stream is up.
 * When the stream cannot be opened (or drops and cannot be opened again) views fall back to
 * polling, and say so on the page. A reopened stream resumes after the last event id it got.
 */
import { poll } from "./poll.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Schemas["WebhookPayload"]} EventPayload  an event's data: its webhook payload */
/** @typedef {{ id: string, type: string, data: EventPayload }} LiveEvent */
/** @typedef {"connecting" | "live" | "polling"} LiveState */

/**
 * Whether an event is a job's (its data is then the Job).
 * @param {EventPayload} payload
 * @returns {payload is Extract<EventPayload, { type: "job.succeeded" | "job.failed" }>}
 */
export const isJobEvent = (payload) => payload.type === "job.succeeded" || payload.type === "job.failed";

/** Stream tokens live this long; a stream open when it expires stays open. */
const TOKEN_TTL_SECONDS = 300;
/** After a failed (re)open, the views poll; the stream is tried again this much later. */
const RETRY_MS = 15_000;

/**
 * The tab's connection to the stream. `types`: the event types to listen to.
 * @param {Api} api
 * @param {string[]} types
 */
export function liveEvents(api, types) {
	/** @type {Set<(e: LiveEvent) => void>} */
	const listeners = new Set();
	/** @type {Set<(s: LiveState) => void>} */
	const watchers = new Set();
	/** @type {LiveState} */
	let state = "connecting";
	/** @type {EventSource | null} */
	let source = null;
	/** @type {string | null} */
	let lastId = null;
	let closed = false;
	/** @type {ReturnType<typeof setTimeout> | undefined} */
	let retry;

	/** @param {LiveState} next */
	const setState = (next) => {
		if (next === state) return;
		state = next;
		for (const w of watchers) w(next);
	};

	/** @param {MessageEvent} m */
	const dispatch = (m) => {
		lastId = m.lastEventId || lastId;
		/** @type {LiveEvent} */
		const event = { id: m.lastEventId, type: m.type, data: /** @type {EventPayload} */ (JSON.parse(m.data)) };
		for (const l of listeners) l(event);
	};

	async function open() {
		if (closed) return;
		try {
			const { token } = await api.data(
				api.client.POST("/v1/events/tokens", { body: { ttl_seconds: TOKEN_TTL_SECONDS } }),
			);
			if (closed) return;
			const query = new URLSearchParams({ token });
			if (lastId) query.set("after", lastId);
			const es = new EventSource(`/v1/events?${query}`);
			source = es;
			for (const type of types) es.addEventListener(type, dispatch);
			es.onopen = () => setState("live");
			es.onerror = () => {
				// A dropped connection is retried by the EventSource itself (with Last-Event-ID); one
				// it gave up on (a refused token, the server gone) is opened again with a new token.
				if (es.readyState !== EventSource.CLOSED) return;
				es.close();
				fail();
			};
		} catch {
			fail();
		}
	}

	function fail() {
		if (closed) return;
		setState("polling");
		clearTimeout(retry);
		retry = setTimeout(open, RETRY_MS);
	}

	void open();
	return {
		/** @returns {LiveState} */
		state: () => state,
		/** @param {(e: LiveEvent) => void} listener */
		subscribe(listener) {
			listeners.add(listener);
			return () => listeners.delete(listener);
		},
		/** @param {(s: LiveState) => void} watcher */
		watch(watcher) {
			watchers.add(watcher);
			return () => watchers.delete(watcher);
		},
		close() {
			closed = true;
			clearTimeout(retry);
			source?.close();
		},
	};
}

/** @typedef {ReturnType<typeof liveEvents>} Live */

/**
 * Runs `load` once, then keeps the view current: from the stream (`onEvent`) while it is up, by
 * polling `load` every `ms` while it is not; `note` says which. `refresh()` loads again at once.
 * @param {{ live: Live, signal: AbortSignal }} ctx
 * @param {number} ms
 * @param {() => Promise<void>} load
 * @param {(e: LiveEvent) => void} onEvent
 * @param {(error: unknown) => void} onError
 * @param {HTMLElement} [note]
 */
export function follow(ctx, ms, load, onEvent, onError, note) {
	/** @type {AbortController | null} */
	let polling = null;
	/** @type {{ refresh: () => void } | null} */
	let poller = null;
	let loading = Promise.resolve();
	const once = () => {
		loading = loading.then(load).catch(onError);
		return loading;
	};
	const say = () => {
		if (!note) return;
		const s = ctx.live.state();
		note.textContent =
			s === "live"
				? "Live: updated as events arrive."
				: s === "polling"
					? `The event stream could not be opened: polling every ${ms / 1000} s.`
					: "Connecting to the event stream…";
		note.dataset.live = s;
	};
	const apply = () => {
		say();
		if (ctx.live.state() === "polling") {
			if (polling) return;
			polling = new AbortController();
			ctx.signal.addEventListener("abort", () => polling?.abort());
			poller = poll(polling.signal, ms, load, onError);
		} else if (ctx.live.state() === "live") {
			polling?.abort();
			polling = null;
			poller = null;
			// Caught up once when the stream opens: what happened before it is in this answer.
			void once();
		}
	};
	const unsubscribe = ctx.live.subscribe((e) => {
		if (!polling) onEvent(e);
	});
	const unwatch = ctx.live.watch(apply);
	ctx.signal.addEventListener("abort", () => {
		unsubscribe();
		unwatch();
		polling?.abort();
	});
	if (ctx.live.state() === "polling") apply();
	else {
		say();
		void once();
	}
	return { refresh: () => (poller ? poller.refresh() : void once()) };
}

/**
 * `fn` at most once every `ms` however many events call it (the last call is never dropped): for
 * views that read their data again when an event says it changed.
 * @param {() => void} fn
 * @param {number} ms
 */
export function throttle(fn, ms) {
	let last = 0;
	/** @type {ReturnType<typeof setTimeout> | undefined} */
	let timer;
	return () => {
		if (timer !== undefined) return;
		const wait = Math.max(0, last + ms - Date.now());
		timer = setTimeout(() => {
			timer = undefined;
			last = Date.now();
			fn();
		}, wait);
	};
}
