/** Reading a `GET /v1/events` response in tests: its events and comments, in order, with a timeout. */
import { type EventSourceMessage, EventSourceParserStream } from "eventsource-parser/stream";

export type Frame = { kind: "event"; message: EventSourceMessage } | { kind: "comment"; text: string };

export interface SseReader {
	/** The next frame, or an error once `timeoutMs` passed without one. */
	next(timeoutMs?: number): Promise<Frame>;
	/** The next event (comments skipped). */
	nextEvent(timeoutMs?: number): Promise<EventSourceMessage>;
	/** Every event that arrives within `ms` (none is an empty list). */
	drain(ms: number): Promise<EventSourceMessage[]>;
	close(): Promise<void>;
}

export function sseReader(res: Response): SseReader {
	if (!res.body) throw new Error("the response has no body");
	const comments: string[] = [];
	const frames = res.body
		.pipeThrough(new TextDecoderStream())
		.pipeThrough(new EventSourceParserStream({ onComment: (text) => comments.push(text) }));
	const reader = frames.getReader();
	const queue: Frame[] = [];
	let pending: Promise<ReadableStreamReadResult<EventSourceMessage>> | null = null;

	async function next(timeoutMs = 10_000): Promise<Frame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			// The parser reports a comment while a read is still waiting for an event: look every 50 ms.
			for (const text of comments.splice(0)) queue.push({ kind: "comment", text: text.trim() });
			const queued = queue.shift();
			if (queued) return queued;
			if (Date.now() > deadline) throw new Error(`no event within ${timeoutMs} ms`);
			pending ??= reader.read();
			const result = await Promise.race([pending, new Promise<"tick">((resolve) => setTimeout(resolve, 50, "tick"))]);
			if (result === "tick") continue;
			pending = null;
			if (result.done) throw new Error("the stream ended");
			for (const text of comments.splice(0)) queue.push({ kind: "comment", text: text.trim() });
			queue.push({ kind: "event", message: result.value });
		}
	}

	async function nextEvent(timeoutMs = 10_000): Promise<EventSourceMessage> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const frame = await next(Math.max(1, deadline - Date.now()));
			if (frame.kind === "event") return frame.message;
		}
	}

	async function drain(ms: number): Promise<EventSourceMessage[]> {
		const out: EventSourceMessage[] = [];
		const deadline = Date.now() + ms;
		for (;;) {
			const left = deadline - Date.now();
			if (left <= 0) return out;
			try {
				out.push(await nextEvent(left));
			} catch {
				return out;
			}
		}
	}

	return { next, nextEvent, drain, close: () => reader.cancel().catch(() => undefined) };
}
