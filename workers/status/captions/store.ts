/**
 * D1 access for captions (docs/data.md#captions): objects' current captions in key order, one
 * object's history, and a person's version, written in one transaction with its `caption.updated`
 * event when a subscription listens for it. Every read is bounded: a page reads `limit + 1` rows of
 * `captions`, each joined with its current version by primary key.
 */
import { z } from "zod";
import { type Caption, CaptionVersionRow, CurrentCaptionRow, toCaption } from "../../../shared/captions/schema";
import { CURRENT_CAPTION_COLUMNS, CURRENT_CAPTION_JOIN, objectVersions } from "../../../shared/captions/version-sql";
import { batchRows, parseRow, parseRows } from "../../../shared/d1-rows";
import { newEventId } from "../../../shared/webhooks/outbox";
import { prefixUpperBound } from "../jobs/key-range";

/**
 * The one prefix that both the query's prefix and the caller's scope allow, or null when they
 * exclude each other (then nothing is visible).
 */
export function effectivePrefix(requested: string | undefined, scope: string | null): string | null {
	const asked = requested ?? "";
	if (scope === null) return asked;
	if (asked.startsWith(scope)) return asked;
	if (scope.startsWith(asked)) return scope;
	return null;
}

export interface CaptionPage {
	rows: CurrentCaptionRow[];
	/** The last key of a full page, to continue after; null on the last page. */
	nextAfter: string | null;
	rowsRead: number;
}

/** Current captions of keys starting with `prefix`, after key `after`, in key order. */
export async function listCaptions(
	db: D1Database,
	bucket: string,
	prefix: string,
	after: string | null,
	limit: number,
): Promise<CaptionPage> {
	// One lower bound, the later of the prefix and the cursor: given both (`key > after AND key >=
	// prefix`), SQLite seeks to the first, so a prefix's first page read every caption before it.
	const from = after !== null && after >= prefix ? { op: ">", key: after } : { op: ">=", key: prefix };
	const upper = prefixUpperBound(prefix);
	const result = await db
		.prepare(
			`SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN}
			WHERE c.bucket = ? AND c.key ${from.op} ? ${upper === null ? "" : "AND c.key < ?"} ORDER BY c.key LIMIT ?`,
		)
		.bind(bucket, from.key, ...(upper === null ? [] : [upper]), limit + 1)
		.all();
	const all = parseRows(CurrentCaptionRow)(result);
	const rows = all.slice(0, limit);
	const more = all.length > limit;
	return { rows, nextAfter: more ? (rows.at(-1)?.key ?? null) : null, rowsRead: result.meta.rows_read ?? 0 };
}

/** An object's current caption, or null when it has none. */
export async function getCurrentCaption(db: D1Database, bucket: string, key: string) {
	return db
		.prepare(`SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN} WHERE c.bucket = ? AND c.key = ?`)
		.bind(bucket, key)
		.first()
		.then(parseRow(CurrentCaptionRow));
}

/** Every version of an object's caption, newest first. */
export async function captionHistory(db: D1Database, bucket: string, key: string): Promise<CaptionVersionRow[]> {
	return db.prepare(objectVersions("?1", "?2")).bind(bucket, key).all().then(parseRows(CaptionVersionRow));
}

export interface HumanCaption {
	bucket: string;
	key: string;
	/** The object's ETag now: the version describes this object version. */
	etag: string;
	text: string;
}

export interface WrittenCaption {
	caption: Caption;
	/** The `caption.updated` event (subscriptions that list the type, and the event stream, get it). */
	eventId: string;
}

const EventId = z.object({ id: z.string() });

/**
 * Adds a human version and makes it current; in the same transaction, records its
 * `caption.updated` event (with the payload as of now): for the subscriptions that list the type
 * and for `GET /v1/events`, whose streams nobody can know of in advance. (People's edits are few;
 * the retention sweep removes the rows with the other webhook events.)
 */
export async function writeHumanCaption(
	db: D1Database,
	input: HumanCaption,
	now = Date.now(),
): Promise<WrittenCaption> {
	const where = "WHERE c.bucket = ?1 AND c.key = ?2";
	const eventId = newEventId(now);
	// Everything of the payload is known but the version count, which the event's insert sets.
	const payload = {
		type: "caption.updated",
		timestamp: new Date(now).toISOString(),
		data: {
			key: input.key,
			etag: input.etag,
			text: input.text,
			source: "human",
			job_id: null,
			model: null,
			prompt: null,
			versions: 0,
			updated_at: new Date(now).toISOString(),
		} satisfies Caption,
	};
	const [, , current, event] = await db.batch([
		db
			.prepare(
				`INSERT INTO captions (bucket, key, current, versions, updated_at) VALUES (?1, ?2, 1, 1, ?3)
				ON CONFLICT (bucket, key) DO UPDATE SET current = captions.versions + 1, versions = captions.versions + 1,
					updated_at = excluded.updated_at`,
			)
			.bind(input.bucket, input.key, now),
		db
			.prepare(
				`INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
				SELECT c.bucket, c.key, c.versions, ?3, 'human', NULL, NULL, NULL, ?4, ?5 FROM captions c ${where}`,
			)
			.bind(input.bucket, input.key, input.text, input.etag, now),
		db.prepare(`SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN} ${where}`).bind(input.bucket, input.key),
		db
			.prepare(
				`INSERT INTO webhook_events (id, type, payload, created_at)
				SELECT ?3, 'caption.updated', json_set(?4, '$.data.versions', c.versions), ?5 FROM captions c ${where}
				RETURNING id`,
			)
			.bind(input.bucket, input.key, eventId, JSON.stringify(payload), now),
	]);
	const [row] = batchRows(current, CurrentCaptionRow);
	if (!row) throw new Error(`the caption of ${input.key} was not written`);
	if (batchRows(event, EventId).length === 0)
		throw new Error(`the caption.updated event of ${input.key} was not written`);
	return { caption: toCaption(row), eventId };
}
