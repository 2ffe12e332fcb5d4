/**
 * Following `GET /v1/events` from a program (the CLI, the bench): the stream read with
 * eventsource-parser, sent the bearer token in a header (never in the URL), and reopened after a
 * dropped connection with `Last-Event-ID`, so that no event is lost and none comes twice. Browsers
 * use their own EventSource with a stream token instead (the dashboard).
 */
import { type EventSourceMessage, EventSourceParserStream } from "eventsource-parser/stream";
import { ApiError, apiError } from "./index.ts";

/** One event of the stream: its id, type and the JSON body of that type's webhook. */
export interface StreamEvent {
	id: string;
	type: string;
	data: unknown;
}

export interface FollowOptions {
	baseUrl: string;
	token: string;
	/** `batch_id`, `prefix`, `types` (comma-separated), as GET /v1/events takes them. */
	query?: Record<string, string | undefined>;
	/** Resume after this event id. */
	after?: string;
	signal?: AbortSignal;
	/** Called each time the stream is (re)opened. */
	onOpen?: () => void;
	/** How long to wait before reopening a dropped stream (default 1 s). */
	reconnectMs?: number;
	fetch?: typeof globalThis.fetch;
}

const toEvent = (m: EventSourceMessage): StreamEvent => ({
	id: m.id ?? "",
	type: m.event ?? "message",
	data: JSON.parse(m.data),
});

async function bodyOf(response: Response): Promise<unknown> {
	const text = await response.text();
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return text;
	}
}

/**
 * The events, in order, until `signal` aborts. A refusal (400, 401, 404 …) throws an ApiError; a
 * dropped connection is reopened from the last id received.
 */
export async function* followEvents(options: FollowOptions): AsyncGenerator<StreamEvent> {
	const doFetch = options.fetch ?? globalThis.fetch;
	let last = options.after;
	for (;;) {
		const url = new URL("/v1/events", options.baseUrl);
		for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
		const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: "text/event-stream" };
		if (last !== undefined) headers["last-event-id"] = last;
		let response: Response | null = null;
		try {
			response = await doFetch(url, { headers, signal: options.signal });
		} catch (err) {
			if (options.signal?.aborted) return;
			if (!(err instanceof TypeError)) throw err;
		}
		if (response && !response.ok) {
			throw apiError(response, await bodyOf(response));
		}
		if (response?.body) {
			options.onOpen?.();
			const reader = response.body
				.pipeThrough(new TextDecoderStream())
				.pipeThrough(new EventSourceParserStream())
				.getReader();
			try {
				for (;;) {
					const { done, value } = await reader.read();
					if (done) break;
					const event = toEvent(value);
					last = event.id || last;
					yield event;
				}
			} catch (err) {
				if (options.signal?.aborted) return;
				if (err instanceof ApiError) throw err;
				// A dropped connection: reopened below from the last id.
			} finally {
				reader.releaseLock();
			}
		}
		if (options.signal?.aborted) return;
		await new Promise((resolve) => setTimeout(resolve, options.reconnectMs ?? 1000));
	}
}
