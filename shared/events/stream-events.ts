/**
 * The events of `GET /v1/events`, read from the webhook outbox (`webhook_events`): every event any
 * producer records there (a job's, a batch's, whatever type the table holds) is an event of the
 * stream, with the body its webhook carries. Its position is the row's `rowid`: D1 runs one
 * transaction at a time and SQLite gives a new row the largest rowid plus one, so rowids grow in
 * commit order. An event id that orders by when its row became visible is what makes a resume
 * exact: a reader that has seen position n has seen every committed event before n (a ULID made by
 * one of many concurrent consumers does not order that way).
 *
 * `readStreamEvents` is the one reader: the event hub's live reads (no filter) and every replay
 * (the caller's scope and filters, in SQL) go through it, so a change of how events are stored
 * changes this file only.
 */
import { z } from "zod";
import type { EstimateModel } from "../batches/estimate";
import { BatchRow, toBatch } from "../batches/schema";
import { batchRows } from "../d1-rows";
import { JobRow, toJob } from "../jobs/schema";
import { JOB_COLUMNS } from "../jobs/texts";
import { eventJobId } from "../webhooks/job-event";

/** Which events a stream wants. `scope`: the caller's prefix (null: everything). */
export const StreamFilter = z.object({
	scope: z.string().nullable(),
	prefix: z.string().nullable(),
	batchId: z.string().nullable(),
	/** null: every type. */
	types: z.array(z.string()).nullable(),
});
export type StreamFilter = z.infer<typeof StreamFilter>;

export interface StreamEvent {
	/** The event's position (rowid in `webhook_events`). */
	seq: number;
	/** The outbox row's id (`evt_…`), as producers name the event when they notify the hub. */
	eventId: string;
	type: string;
	/** The job's object key, or the batch's key prefix: what scopes and prefixes are matched against. */
	matchKey: string;
	/** The job's batch, or the batch itself. */
	batchId: string | null;
	/** The JSON body of the event's webhook. */
	data: string;
}

// ── Event ids ───────────────────────────────────────────────────────────────────────────────
/** Fixed width, so ids compare as strings the way they compare as positions. */
const ID_WIDTH = 15;
export const eventIdOf = (seq: number) => String(seq).padStart(ID_WIDTH, "0");
/** What `Last-Event-ID` or `?after=` may hold: an id this stream sent. */
export const EventIdParam = z
	.string()
	.regex(/^\d{1,15}$/, "Not an event id of this stream: pass the `id:` of the last event received")
	.transform(Number);

// ── Matching ────────────────────────────────────────────────────────────────────────────────
/**
 * Whether a live event goes to a stream: the same rules as `filterSql` (replays), the way
 * subscriptions match too (a job by its object key, a batch by its key prefix).
 */
export function matches(filter: StreamFilter, event: StreamEvent): boolean {
	if (filter.scope !== null && !event.matchKey.startsWith(filter.scope)) return false;
	if (filter.prefix !== null && !event.matchKey.startsWith(filter.prefix)) return false;
	if (filter.batchId !== null && event.batchId !== filter.batchId) return false;
	return filter.types === null || filter.types.includes(event.type);
}

const startsWith = (column: string, param: string) =>
	`(${param} IS NULL OR substr(${column}, 1, length(${param})) = ${param})`;

// ── Reading ─────────────────────────────────────────────────────────────────────────────────
const EventListRow = z.object({
	seq: z.number().int(),
	id: z.string(),
	type: z.string(),
	payload: z.string().nullable(),
	created_at: z.number(),
	job_id: z.string().nullable(),
	batch_id: z.string().nullable(),
});

export interface StreamRead {
	/** Positions after this one… */
	after: number;
	/** …up to and including this one (null: no bound). */
	upTo: number | null;
	/** null: every event (the hub filters per stream). */
	filter: StreamFilter | null;
	limit: number;
	/** Prices a batch's estimate (MODEL_CHAIN), as `GET /v1/batches/{id}` prices it. */
	estimateChain: readonly EstimateModel[] | undefined;
}

export interface StreamPage {
	events: StreamEvent[];
	/** The last position this page examined: read on from here (equals `after` when it found none). */
	last: number;
	/** Whether the page was full (there may be more before `upTo`). */
	full: boolean;
}

/** What scopes and prefixes match: a job's object key, a batch's key prefix, a caption's key. */
const MATCH_KEY = "coalesce(j.key, b.key_prefix, json_extract(e.payload, '$.data.key'))";

/** An event about an object's caption (`caption.updated`): its body is stored, and names the key. */
const CaptionEventBody = z.object({ data: z.object({ key: z.string() }) });

/** What an event whose body is its stored payload, with no job or batch row, is about. */
function payloadSubject(payload: string | null): { matchKey: string; batchId: null; data: null } | null {
	if (payload === null) return null;
	const body = CaptionEventBody.safeParse(JSON.parse(payload));
	// Its body is the stored payload: there is no row to build one from.
	return body.success ? { matchKey: body.data.data.key, batchId: null, data: null } : null;
}

/**
 * Events in (after, upTo], oldest first, with their webhook bodies. Three statements in one batch:
 * the page of events (filtered in SQL), then the jobs and batches they are about. An event whose
 * job or batch is gone (retention removed it) is skipped: there is no body to send.
 */
export async function readStreamEvents(db: D1Database, read: StreamRead): Promise<StreamPage> {
	const f = read.filter;
	const page = `SELECT e.rowid AS seq, e.id, e.type, e.payload, e.created_at, ${eventJobId("e.")} AS job_id, e.batch_id
		FROM webhook_events e LEFT JOIN jobs j ON j.id = ${eventJobId("e.")} LEFT JOIN batches b ON b.id = e.batch_id
		WHERE e.rowid > ?1 AND (?2 IS NULL OR e.rowid <= ?2)
			AND ${startsWith(MATCH_KEY, "?3")} AND ${startsWith(MATCH_KEY, "?4")}
			AND (?5 IS NULL OR coalesce(j.batch_id, b.id) = ?5)
			AND (?6 IS NULL OR e.type IN (SELECT value FROM json_each(?6)))
		ORDER BY e.rowid LIMIT ?7`;
	const params = [
		read.after,
		read.upTo,
		f?.scope ?? null,
		f?.prefix ?? null,
		f?.batchId ?? null,
		f?.types ? JSON.stringify(f.types) : null,
		read.limit,
	];
	const [events, jobs, batches] = await db.batch([
		db.prepare(page).bind(...params),
		db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id IN (SELECT job_id FROM (${page}))`).bind(...params),
		db.prepare(`SELECT * FROM batches WHERE id IN (SELECT batch_id FROM (${page}))`).bind(...params),
	]);
	const rows = batchRows(events, EventListRow);
	const jobById = new Map(batchRows(jobs, JobRow).map((j) => [j.id, j]));
	const batchById = new Map(batchRows(batches, BatchRow).map((b) => [b.id, b]));
	const out: StreamEvent[] = [];
	for (const row of rows) {
		const job = row.job_id === null ? undefined : jobById.get(row.job_id);
		const batch = row.batch_id === null ? undefined : batchById.get(row.batch_id);
		const subject = job
			? { matchKey: job.key, batchId: job.batch_id, data: toJob(job) }
			: batch
				? { matchKey: batch.key_prefix, batchId: batch.id, data: toBatch(batch, undefined, read.estimateChain) }
				: row.job_id === null && row.batch_id === null
					? payloadSubject(row.payload)
					: null;
		if (subject === null) continue;
		// An event recorded with its body (older events, or a type whose body is not its row) keeps it.
		const data =
			row.payload ??
			JSON.stringify({ type: row.type, timestamp: new Date(row.created_at).toISOString(), data: subject.data });
		out.push({
			seq: row.seq,
			eventId: row.id,
			type: row.type,
			matchKey: subject.matchKey,
			batchId: subject.batchId,
			data,
		});
	}
	const last = rows.at(-1)?.seq ?? read.after;
	return { events: out, last, full: rows.length === read.limit };
}

/** The newest position (0 when there are no events). */
export async function headPosition(db: D1Database): Promise<number> {
	const row = await db.prepare("SELECT coalesce(max(rowid), 0) AS head FROM webhook_events").first();
	return z.object({ head: z.number().int() }).parse(row).head;
}

// ── Server-sent events ──────────────────────────────────────────────────────────────────────
/** One event in the text/event-stream format; `data` is one line of JSON. */
export const sseEvent = (event: StreamEvent) =>
	`id: ${eventIdOf(event.seq)}\nevent: ${event.type}\ndata: ${event.data}\n\n`;
export const sseComment = (text: string) => `: ${text}\n\n`;
