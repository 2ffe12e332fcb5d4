/**
 * Batches in D1 as the status API reads and changes them: create (with a keys batch's keys),
 * get and list within a caller's scope, the batches still in progress (for /v1/stats), and cancel.
 * Scope: a caller limited to prefix `p` sees only batches whose objects all start with `p`, that is
 * whose `key_prefix` starts with `p`.
 */
import { z } from "zod";
import { getBatchRow } from "../../../shared/batches/read";
import { BatchRow, type BatchStatus } from "../../../shared/batches/schema";
import { type SettledBatch, settleBatchStatements, settledBatch } from "../../../shared/batches/settle";
import type { Recaption } from "../../../shared/captions/recaption";
import { batchRows, parseRow, parseRows } from "../../../shared/d1-rows";
import { ulid } from "../../../shared/ids";
import type { JobStatus } from "../../../shared/jobs/schema";
import { newEventId } from "../../../shared/webhooks/outbox";
import { type CappedPage, cappedScan } from "../capped-scan";
import { prefixCondition } from "../jobs/key-range";
import { keysetCursor, type Position } from "../keyset-cursor";
import type { OutputColumns } from "../output-options";

/** A keys batch holds at most this many keys (`POST /v1/batches`). */
export const MAX_FROM_BATCH_KEYS = 10_000;

export const newBatchId = (now?: number) => `bat_${ulid(now)}`;
export const batchCursor = keysetCursor("bat_");

/** SQL condition for batches inside the scope bound to `param` (NULL: every batch). */

export interface NewBatch {
	bucket: string;
	/** A prefix batch's prefix, or the distinct keys of a keys batch. */
	source: { prefix: string } | { keys: string[] };
	prompt: string | null;
	maxTokens: number | null;
	/** The output options for every job (text forms). */
	outputs?: OutputColumns;
	callbackUrl: string | null;
	metadata: Record<string, string>;
	skipCaptioned: boolean;
	/** Re-caption rules (then `skipCaptioned` does not apply), or null. */
	recaption: Recaption | null;
	/** List and count only (status `planned` at the end): no job until started. */
	dryRun: boolean;
	/** Its captions may take another task type's slots when the first model's are taken. */
	spillover: boolean;
	keyId: string | null;
}

/** The longest prefix all `keys` share, cut at a code point boundary. */
export function commonPrefix(keys: string[]): string {
	const [first, ...rest] = keys;
	if (first === undefined) return "";
	let points = Array.from(first);
	for (const key of rest) {
		const other = Array.from(key);
		let n = 0;
		while (n < points.length && n < other.length && points[n] === other[n]) n++;
		points = points.slice(0, n);
	}
	return points.join("");
}

/** A keys batch's keys go in as JSON arrays of at most this many bytes a statement. */
const KEY_CHUNK_BYTES = 256 * 1024;

function keyChunks(keys: string[]): { offset: number; json: string }[] {
	const chunks: { offset: number; json: string }[] = [];
	let start = 0;
	let bytes = 0;
	keys.forEach((key, i) => {
		bytes += key.length * 3 + 4;
		if (bytes > KEY_CHUNK_BYTES && i > start) {
			chunks.push({ offset: start, json: JSON.stringify(keys.slice(start, i)) });
			start = i;
			bytes = key.length * 3 + 4;
		}
	});
	if (start < keys.length) chunks.push({ offset: start, json: JSON.stringify(keys.slice(start)) });
	return chunks;
}

export type CreateBatchResult = { kind: "created"; batch: BatchRow } | { kind: "too-many-open" };

/**
 * Inserts the batch (status `listing`) and, for a keys batch, its keys, in one transaction; unless
 * its API key already has `maxOpenPerKey` batches listing or running (counted in the insert, through
 * the index `batches_key_open`, so two requests at once cannot both take the last place). The
 * admin's batches (no key) have no limit.
 */
export async function createBatch(
	db: D1Database,
	input: NewBatch,
	maxOpenPerKey: number,
	now = Date.now(),
): Promise<CreateBatchResult> {
	const id = newBatchId(now);
	const { source } = input;
	const prefix = "prefix" in source ? source.prefix : null;
	const keys = "keys" in source ? source.keys : [];
	const [inserted] = await db.batch([
		db
			.prepare(
				`INSERT INTO batches (id, status, bucket, prefix, key_count, key_prefix, prompt, max_tokens, callback_url,
					metadata, skip_captioned, key_id, created_at, updated_at, recaption, overwrite_human, dry_run, spillover,
					output, language, write_back)
				SELECT ?1, 'listing', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?14, ?15, ?16, ?17, ?18, ?19, ?20
				WHERE ?11 IS NULL OR (SELECT count(*) FROM (SELECT 1 FROM batches
					WHERE key_id = ?11 AND status IN ('listing', 'running') LIMIT ?13)) < ?13
				RETURNING *`,
			)
			.bind(
				id,
				input.bucket,
				prefix,
				prefix === null ? keys.length : null,
				prefix ?? commonPrefix(keys),
				input.prompt,
				input.maxTokens,
				input.callbackUrl,
				JSON.stringify(input.metadata),
				input.skipCaptioned && input.recaption === null ? 1 : 0,
				input.keyId,
				now,
				maxOpenPerKey,
				input.recaption === null ? null : JSON.stringify(input.recaption),
				input.recaption?.overwrite_human ? 1 : 0,
				input.dryRun ? 1 : 0,
				input.spillover ? 1 : 0,
				input.outputs?.output ?? null,
				input.outputs?.language ?? null,
				input.outputs?.writeBack ?? null,
			),
		...keyChunks(keys).map((chunk) =>
			db
				.prepare(
					`INSERT INTO batch_keys (batch_id, seq, key) SELECT ?1, ?2 + key, value FROM json_each(?3)
					WHERE EXISTS (SELECT 1 FROM batches WHERE id = ?1)`,
				)
				.bind(id, chunk.offset, chunk.json),
		),
	]);
	const [row] = batchRows(inserted, BatchRow);
	return row ? { kind: "created", batch: row } : { kind: "too-many-open" };
}

/**
 * Newest first, optionally of one status, within the caller's scope: a walk of the status's (or
 * every) batch index capped at SCAN_ROWS rows a page (../capped-scan.ts), so a scope that matches
 * few batches reads a bounded number of rows and pages on with a cursor.
 */
export async function listBatches(
	db: D1Database,
	filter: { status?: BatchStatus; scope: string | null },
	limit: number,
	after: Position | null,
): Promise<CappedPage<BatchRow>> {
	return cappedScan(db, {
		table: "batches",
		index: filter.status === undefined ? "batches_created" : "batches_status_created",
		served: filter.status === undefined ? [] : [{ sql: "status = ?", params: [filter.status] }],
		residual: filter.scope === null ? [] : [prefixCondition("key_prefix", filter.scope)],
		after,
		limit,
		schema: BatchRow,
		encode: batchCursor.encode,
	});
}

export type CancelResult =
	| { kind: "cancelled"; batch: BatchRow; settled: SettledBatch | null }
	| { kind: "already-cancelled"; batch: BatchRow }
	| { kind: "completed"; batch: BatchRow }
	| { kind: "missing" };

/**
 * Cancels a batch still listing or running, for its creator or the admin (for any other key it is
 * `missing`, as another key's subscription is), in one transaction: listing stops (its pages are
 * guarded by `status = 'listing'`), every queued job ends `cancelled` (no model call, no webhook)
 * and the queued count moves to cancelled. Jobs already processing finish; the batch settles
 * (its `batch.cancelled` event) when the last of them does, or at once if none is running.
 */
export async function cancelBatch(
	db: D1Database,
	id: string,
	caller: { scope: string | null; keyId: string | null },
	now = Date.now(),
): Promise<CancelResult> {
	const current = await getBatchRow(db, id, caller.scope);
	// A batch's key never changes, so this check holds for the transaction below.
	if (!current || (caller.keyId !== null && current.key_id !== caller.keyId)) return { kind: "missing" };
	if (current.status === "completed") return { kind: "completed", batch: current };
	if (current.status === "cancelled") return { kind: "already-cancelled", batch: current };
	const eventId = newEventId(now);
	const results = await db.batch([
		// The counts move first: queued equals the batch's queued jobs at this point of the transaction.
		// A plan (a dry run, listed or listing) made no job: its counts were what it would do, and a
		// cancelled plan ends with none, so that total is their sum (its estimate stays).
		db
			.prepare(
				`UPDATE batches SET status = 'cancelled', cancelled = cancelled + queued, queued = 0, unsent = NULL,
					unsent_page = NULL, updated_at = ?2,
					total = CASE WHEN dry_run = 1 THEN 0 ELSE total END,
					skipped = CASE WHEN dry_run = 1 THEN 0 ELSE skipped END,
					missing = CASE WHEN dry_run = 1 THEN 0 ELSE missing END
				WHERE id = ?1 AND status IN ('planned', 'listing', 'running')`,
			)
			.bind(id, now),
		db
			.prepare(
				`UPDATE jobs SET status = 'cancelled', completed_at = ?2, updated_at = ?2, total_ms = ?2 - created_at
				WHERE batch_id = ?1 AND status = 'queued' AND (SELECT status FROM batches WHERE id = ?1) = 'cancelled'`,
			)
			.bind(id, now),
		...settleBatchStatements(db, { batchId: id }, eventId, now),
		db.prepare("SELECT * FROM batches WHERE id = ?1").bind(id),
	]);
	const [after] = batchRows(results[4], BatchRow);
	if (!after) return { kind: "missing" };
	// Another request may have finished or cancelled it in between: report what it is now.
	if (after.status === "completed") return { kind: "completed", batch: after };
	const changed = (results[0]?.meta.changes ?? 0) > 0;
	if (!changed) return { kind: "already-cancelled", batch: after };
	return { kind: "cancelled", batch: after, settled: settledBatch(results[2], eventId) };
}

export type StartResult =
	| { kind: "started"; batch: BatchRow }
	| { kind: "missing" }
	| { kind: "not-planned"; batch: BatchRow }
	| { kind: "too-many-open" };

/**
 * Starts a planned batch: its listing begins again from the first page (so the skip rules are
 * checked again, and its counts start from zero and move as any batch's). Only its creator and
 * the admin may; a key's started batch counts among its open batches (`maxOpenPerKey`).
 */
export async function startBatch(
	db: D1Database,
	id: string,
	caller: { scope: string | null; keyId: string | null },
	maxOpenPerKey: number,
	now = Date.now(),
): Promise<StartResult> {
	const current = await getBatchRow(db, id, caller.scope);
	if (!current || (caller.keyId !== null && current.key_id !== caller.keyId)) return { kind: "missing" };
	if (current.status !== "planned") return { kind: "not-planned", batch: current };
	const started = await db
		.prepare(
			`UPDATE batches SET status = 'listing', dry_run = 0, pages_listed = 0, list_cursor = NULL, total = 0,
				skipped = 0, missing = 0, listed_at = NULL, updated_at = ?2, started_at = ?2
			WHERE id = ?1 AND status = 'planned' AND (key_id IS NULL OR (SELECT count(*) FROM (SELECT 1 FROM batches
				WHERE key_id = ?3 AND status IN ('listing', 'running') LIMIT ?4)) < ?4)
			RETURNING *`,
		)
		.bind(id, now, current.key_id, maxOpenPerKey)
		.first()
		.then(parseRow(BatchRow));
	if (started) return { kind: "started", batch: started };
	const after = await getBatchRow(db, id, caller.scope);
	if (after?.status === "planned") return { kind: "too-many-open" };
	return after ? { kind: "not-planned", batch: after } : { kind: "missing" };
}

const KeyOnly = z.object({ key: z.string() });

/**
 * The keys of a batch's objects whose job ended in one of `filter.status` (and, if given, with one
 * of `filter.error_code`), in key order: at most `limit` of them (the caller asks for one more than
 * it accepts, to know there were too many). Reads the batch's jobs through jobs_batch_key.
 */
export async function batchKeysThatEnded(
	db: D1Database,
	batchId: string,
	filter: { status: JobStatus[]; error_code?: string[] | undefined },
	limit = MAX_FROM_BATCH_KEYS + 1,
): Promise<string[]> {
	const rows = await db
		.prepare(
			`SELECT key FROM jobs WHERE batch_id = ?1 AND status IN (SELECT value FROM json_each(?2))
				AND (?3 IS NULL OR error_code IN (SELECT value FROM json_each(?3)))
			ORDER BY key LIMIT ?4`,
		)
		.bind(batchId, JSON.stringify(filter.status), filter.error_code ? JSON.stringify(filter.error_code) : null, limit)
		.all()
		.then(parseRows(KeyOnly));
	return rows.map((r) => r.key);
}
