/**
 * The event hub: one Durable Object (named "account") that holds every open `GET /v1/events`
 * stream and is the only reader of new events. Producers (the consumer when a job finishes, the
 * webhooks Worker when it fans an event out) tell it that something happened (`notify`); it then
 * reads what is new since its last read — one D1 read however many streams are open — and writes
 * each event to the streams that match it. While streams are open it also writes a comment every
 * 15 s (EVENTS_KEEPALIVE_SECONDS) and reads once (a notification that got lost is picked up then).
 * With no stream open it reads nothing, and idle streams cost one timer per hub, not one per stream.
 *
 * A stream that resumes (`after`) is first replayed from D1 with its filter, in pages, up to the
 * hub's last read, then joins the live streams in the same turn of the event loop in which its
 * replay reached that position: live events go only to streams whose own position is behind them,
 * so nothing is sent twice and nothing falls between replay and live.
 *
 * SSE needs an open request, so this object is not hibernated while a stream is open (only
 * WebSocket servers hibernate): docs/events.md has the cost and the limits.
 */
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { errorMessage, log } from "../log";
import { ModelChainSetting } from "../models/registry";
import {
	headPosition,
	matches,
	readStreamEvents,
	type StreamEvent,
	StreamFilter,
	sseComment,
	sseEvent,
} from "./stream-events";

/**
 * EVENTS_KEEPALIVE_SECONDS, a consumer var (15 unless set): a comment this often keeps proxies from
 * closing an idle stream, and the hub re-reads then, in case a notification was lost. The test pool
 * sets it low, so that its test of the comment does not wait 15 s.
 */
export const KeepAliveSeconds = z.coerce.number().positive().max(300).default(15);
const PAGE = 100;
/** A client this far behind (bytes queued, unread) is closed: it resumes with its last id. */
const MAX_QUEUED_BYTES = 1 << 20;
/** How many recently read event ids the hub remembers, so a second notification of one event reads nothing. */
const RECENT_IDS = 1_000;

interface Stream {
	filter: StreamFilter;
	/** The API key the stream was opened with (directly or through a stream token); null for the admin. */
	keyId: string | null;
	writer: WritableStreamDefaultWriter<Uint8Array>;
	/** The last position this stream has been sent (or skipped, not matching). */
	position: number;
	/** Replaying: not yet among the live streams. */
	live: boolean;
}

/** Counters of the hub's work, for the benchmark and docs/events.md. */
export interface HubStats {
	streams: number;
	d1Reads: number;
	notifications: number;
	notificationsSkipped: number;
	eventsRead: number;
	writes: number;
	heartbeats: number;
}

const encoder = new TextEncoder();

export interface EventHubEnv {
	DB: D1Database;
	EVENTS_KEEPALIVE_SECONDS?: string;
	/** The consumer's chain: its first model prices a batch event's estimate, as GET /v1/batches/{id} does. */
	MODEL_CHAIN?: string;
}

export class EventHub extends DurableObject<EventHubEnv> {
	private streams = new Set<Stream>();
	/** The position of the last event read (null until the first read). */
	private head: number | null = null;
	private pumping: Promise<void> | null = null;
	private again = false;
	private timer: ReturnType<typeof setInterval> | null = null;
	private recent = new Set<string>();
	private stats: HubStats = {
		streams: 0,
		d1Reads: 0,
		notifications: 0,
		notificationsSkipped: 0,
		eventsRead: 0,
		writes: 0,
		heartbeats: 0,
	};

	/** POST with a JSON body `{filter, after}` → the text/event-stream response. */
	override async fetch(request: Request): Promise<Response> {
		const { filter, after, keyId } = OpenStream.parse(await request.json());
		// The first stream after an idle spell: what was recorded meanwhile was never read, so the
		// head is read again rather than replaying it to a stream that did not ask for it.
		if (this.streams.size === 0) this.head = null;
		const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
		const stream: Stream = { filter, keyId, writer: writable.getWriter(), position: 0, live: false };
		this.streams.add(stream);
		this.startTimer();
		stream.writer.closed.catch(() => undefined).finally(() => this.drop(stream));
		this.write(stream, sseComment("connected"));
		await this.ensureHead();
		stream.position = after ?? this.head ?? 0;
		// Not awaited: the response (headers) goes out now, the replay follows on the stream.
		this.ctx.waitUntil(this.replay(stream));
		return new Response(readable, {
			headers: {
				"Content-Type": "text/event-stream; charset=utf-8",
				"Cache-Control": "no-cache, no-transform",
				"X-Accel-Buffering": "no",
			},
		});
	}

	/**
	 * Something was recorded: `eventIds` (when known) lets a repeated notification read nothing.
	 * Returns at once: the producer (a consumer finishing a job) never waits for the hub's read.
	 */
	async notify(eventIds: string[] = []): Promise<void> {
		this.stats.notifications++;
		if (this.streams.size === 0) return;
		if (eventIds.length > 0 && eventIds.every((id) => this.recent.has(id))) {
			this.stats.notificationsSkipped++;
			return;
		}
		this.ctx.waitUntil(this.pump());
	}

	/**
	 * A key was revoked: its open streams end now (a stream token's included), as its next request
	 * would be refused. Returns how many were closed.
	 */
	async closeStreamsOf(keyId: string): Promise<number> {
		const closing = [...this.streams].filter((stream) => stream.keyId === keyId);
		for (const stream of closing) this.close(stream);
		return closing.length;
	}

	async hubStats(): Promise<HubStats> {
		return { ...this.stats, streams: this.streams.size };
	}

	/** The chain, whose first model that writes a batch's language prices its estimate in its events' bodies. */
	private estimateChain() {
		return ModelChainSetting.parse(this.env.MODEL_CHAIN);
	}

	private async ensureHead(): Promise<void> {
		if (this.head !== null) return;
		this.stats.d1Reads++;
		const head = await headPosition(this.env.DB);
		this.head ??= head;
	}

	/** Replays a stream's events up to the hub's head, then makes it live (see the file's header). */
	private async replay(stream: Stream): Promise<void> {
		try {
			for (;;) {
				const head = this.head ?? 0;
				if (stream.position >= head) {
					stream.live = true;
					return;
				}
				this.stats.d1Reads++;
				const page = await readStreamEvents(this.env.DB, {
					after: stream.position,
					upTo: head,
					filter: stream.filter,
					limit: PAGE,
					estimateChain: this.estimateChain(),
				});
				if (!this.streams.has(stream)) return;
				for (const event of page.events) this.send(stream, event);
				stream.position = page.full ? page.last : head;
			}
		} catch (err) {
			log("error", "event_replay_failed", { error: errorMessage(err) });
			this.close(stream);
		}
	}

	/** Reads what is new since the last read and sends it to the live streams; one read at a time. */
	private pump(): Promise<void> {
		if (this.pumping) {
			this.again = true;
			return this.pumping;
		}
		this.pumping = (async () => {
			try {
				do {
					this.again = false;
					await this.readNew();
				} while (this.again && this.streams.size > 0);
			} catch (err) {
				log("error", "event_hub_read_failed", { error: errorMessage(err) });
			} finally {
				this.pumping = null;
			}
		})();
		return this.pumping;
	}

	private async readNew(): Promise<void> {
		await this.ensureHead();
		for (;;) {
			const after = this.head ?? 0;
			this.stats.d1Reads++;
			const page = await readStreamEvents(this.env.DB, {
				after,
				upTo: null,
				filter: null,
				limit: PAGE,
				estimateChain: this.estimateChain(),
			});
			// Synchronous from here to the head's update: a replay finishing in between cannot slip in.
			for (const event of page.events) {
				this.remember(event);
				for (const stream of this.streams) {
					if (!stream.live || stream.position >= event.seq) continue;
					if (matches(stream.filter, event)) this.send(stream, event);
					stream.position = event.seq;
				}
			}
			this.stats.eventsRead += page.events.length;
			this.head = Math.max(after, page.last);
			for (const stream of this.streams) if (stream.live) stream.position = Math.max(stream.position, this.head);
			if (!page.full) return;
		}
	}

	private remember(event: StreamEvent): void {
		this.recent.add(event.eventId);
		if (this.recent.size > RECENT_IDS) {
			const oldest = this.recent.values().next().value;
			if (oldest !== undefined) this.recent.delete(oldest);
		}
	}

	private send(stream: Stream, event: StreamEvent): void {
		this.write(stream, sseEvent(event));
	}

	private write(stream: Stream, text: string): void {
		const size = stream.writer.desiredSize;
		if (size !== null && size < -MAX_QUEUED_BYTES) {
			this.close(stream);
			return;
		}
		this.stats.writes++;
		stream.writer.write(encoder.encode(text)).catch(() => this.drop(stream));
	}

	private close(stream: Stream): void {
		stream.writer.close().catch(() => undefined);
		this.drop(stream);
	}

	private drop(stream: Stream): void {
		this.streams.delete(stream);
		if (this.streams.size === 0 && this.timer !== null) {
			clearInterval(this.timer);
			this.timer = null;
		}
	}

	private startTimer(): void {
		if (this.timer !== null) return;
		const everyMs = KeepAliveSeconds.parse(this.env.EVENTS_KEEPALIVE_SECONDS) * 1000;
		this.timer = setInterval(() => {
			this.stats.heartbeats++;
			for (const stream of this.streams) this.write(stream, sseComment("keep-alive"));
			// What the open streams cost so far (docs/events.md; the benchmark reads these lines).
			log("info", "event_hub_stats", { ...this.stats, streams: this.streams.size });
			this.ctx.waitUntil(this.pump());
		}, everyMs);
	}
}

/** What the status Worker asks for when it opens a stream. */
export const OpenStream = z.object({
	filter: StreamFilter,
	after: z.number().int().nonnegative().nullable(),
	keyId: z.string().nullable(),
});
export type OpenStream = z.infer<typeof OpenStream>;
