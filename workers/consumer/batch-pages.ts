/**
 * A batch's listing checkpoint in D1. One page commits in one transaction, guarded by the
 * checkpoint (`status = 'listing' AND pages_listed = page`): its jobs (unique per batch and key), its
 * skips, its missing keys, the counts and the advanced checkpoint either all
 * commit or none does, so a page that is retried, or listed twice by duplicate messages, never makes
 * a second job nor counts an object twice. The counts come from the rows the page wrote.
 */
import { z } from "zod";
import { BatchRow } from "../../shared/batches/schema";
import { type SettledBatch, settleBatchStatements, settledBatch } from "../../shared/batches/settle";
import { batchRows, parseRow, parseRows } from "../../shared/d1-rows";
import { newJobId } from "../../shared/ids";
import { deferredCountsBracket, insertedCountsStatement } from "../../shared/jobs/batched-counts";
import { jobText } from "../../shared/jobs/text-sql";
import { newEventId } from "../../shared/webhooks/outbox";

/** One object of a page: what the listing (or a HEAD of a given key) said about it. */
export interface ListedObject {
	key: string;
	etag: string;
	size: number | null;
	/** The prompt its job would run with (for skip_captioned), when that is checked. */
	prompt?: string;
}

const KeyRow = z.object({ seq: z.number(), key: z.string() });

/** The next keys of a keys batch after position `afterSeq` (-1: from the start). */
export async function batchKeys(db: D1Database, batchId: string, afterSeq: number, limit: number) {
	return db
		.prepare("SELECT seq, key FROM batch_keys WHERE batch_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
		.bind(batchId, afterSeq, limit)
		.all()
		.then(parseRows(KeyRow));
}

const Captioned = z.object({ key: z.string(), job_id: z.string() });

/**
 * For each object, the newest succeeded job of its current version (bucket, key, etag) that ran
 * with the prompt its new job would use: those objects are skipped.
 */
export async function alreadyCaptioned(
	db: D1Database,
	bucket: string,
	objects: ListedObject[],
): Promise<Map<string, string | null>> {
	if (objects.length === 0) return new Map();
	// CROSS JOIN and `+status` pin the plan: for each listed object, the jobs of its key
	// (jobs_key_created), never a walk over every succeeded job (jobs_status_created).
	const rows = await db
		.prepare(
			`SELECT j.key AS key, max(j.id) AS job_id
			FROM json_each(?1) p CROSS JOIN jobs j ON j.key = json_extract(p.value, '$[0]')
			WHERE j.bucket = ?2 AND j.etag = json_extract(p.value, '$[1]') AND ${jobText("prompt", "j.")} = json_extract(p.value, '$[2]')
				AND +j.status = 'succeeded'
			GROUP BY j.key`,
		)
		.bind(JSON.stringify(objects.map((o) => [o.key, o.etag, o.prompt ?? null])), bucket)
		.all()
		.then(parseRows(Captioned));
	return new Map(rows.map((r) => [r.key, r.job_id]));
}

/** What a page adds to its batch. */
export interface PagePlan {
	/** Objects that get a queued job. */
	queue: ListedObject[];
	/** Keys given that are not in the bucket: recorded and counted `missing`, no job. */
	missing: string[];
	/** Skipped objects and the job that already holds their caption (null: a person's caption). */
	skip: { key: string; jobId: string | null }[];
	/** Where the next page starts (an R2 cursor, or the last key position), or null after the last page. */
	nextCursor: string | null;
}

export interface CommittedPage {
	/** Ids of the queued jobs the page created: they need caption messages. */
	queued: string[];
	/** Set when the page was the last and nothing of the batch was left to run. */
	settled: SettledBatch | null;
	batch: BatchRow;
}

const WrittenJob = z.object({ id: z.string() });

export type CommitResult =
	| ({ kind: "committed" } & CommittedPage)
	/** The checkpoint had moved: the page was done already, or the batch cancelled. */
	| { kind: "stale" }
	/** The page's jobs would put the batch's API key over its in-flight cap: nothing was written. */
	| { kind: "held" };

/**
 * SQL condition, true when the key's jobs in flight before this commit, plus the page's new
 * queued jobs, stay within the cap. Parameters from `?{first}`: key id, cap (NULL: none), the
 * page's queued count, the page's fresh job ids (JSON). Jobs this commit already wrote are taken
 * back out of the count, so every statement of the commit sees the same answer.
 */
function underCap(first: number): string {
	const [key, cap, n, ids] = [first, first + 1, first + 2, first + 3].map((i) => `?${i}`);
	return `(${key} IS NULL OR ${cap} IS NULL OR
		(SELECT count(*) FROM (SELECT 1 FROM jobs WHERE key_id = ${key} AND status IN ('queued', 'processing')
			LIMIT ${cap} + ${n} + 1))
		- (SELECT count(*) FROM jobs WHERE id IN (SELECT value FROM json_each(${ids})))
		+ ${n} <= ${cap})`;
}

/**
 * Commits page `page` of `batch`. A missing key gets no job (so no event, no webhook, no model
 * call): it is recorded in `batch_missing` and counted in `missing`. An object the batch already
 * holds in one of its three tables (job, skip, missing) is not written again. With `inFlightCap`,
 * the page commits only if its queued jobs keep the batch's API key within it (checked inside the
 * transaction, so two listers of one key cannot both take the last places).
 */
export async function commitPage(
	db: D1Database,
	batch: BatchRow,
	page: number,
	plan: PagePlan,
	now: number,
	inFlightCap: number | null = null,
): Promise<CommitResult> {
	const queued = plan.queue.map((o) => ({ ...o, id: newJobId(now) }));
	const freshIds = JSON.stringify(queued.map((o) => o.id));
	const cap = [batch.key_id, inFlightCap, queued.length, freshIds];
	const guard = (first: number) =>
		`EXISTS (SELECT 1 FROM batches WHERE id = ?1 AND status = 'listing' AND pages_listed = ?2) AND ${underCap(first)}`;
	const done = plan.nextCursor === null;
	const settleEventId = newEventId(now);
	const statements = [
		db
			.prepare(
				`INSERT INTO jobs (id, source, batch_id, bucket, key, etag, size, prompt, max_tokens, status, attempts,
					created_at, updated_at, key_id, output, language, write_back)
				SELECT json_extract(value, '$[0]'), 'batch', ?1, ?3, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
					json_extract(value, '$[3]'), ?4, ?5, 'queued', 0, ?6, ?6, ?8,
					(SELECT output FROM batches WHERE id = ?1), (SELECT language FROM batches WHERE id = ?1),
					(SELECT write_back FROM batches WHERE id = ?1)
				FROM json_each(?7) WHERE ${guard(8)}
					AND NOT EXISTS (SELECT 1 FROM batch_missing m WHERE m.batch_id = ?1 AND m.key = json_extract(value, '$[1]'))
				ON CONFLICT (batch_id, key) WHERE batch_id IS NOT NULL DO NOTHING
				RETURNING id`,
			)
			.bind(
				batch.id,
				page,
				batch.bucket,
				batch.prompt,
				batch.max_tokens,
				now,
				JSON.stringify(queued.map((o) => [o.id, o.key, o.etag, o.size])),
				...cap,
			),
		// Tagged with the page, so that the UPDATE below counts exactly the rows this commit wrote.
		db
			.prepare(
				`INSERT INTO batch_missing (batch_id, key, page)
				SELECT ?1, value, ?2 FROM json_each(?3) WHERE ${guard(4)}
					AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = ?1 AND j.key = value)
					AND NOT EXISTS (SELECT 1 FROM batch_skips s WHERE s.batch_id = ?1 AND s.key = value)
				ON CONFLICT DO NOTHING`,
			)
			.bind(batch.id, page, JSON.stringify(plan.missing), ...cap),
		db
			.prepare(
				`INSERT INTO batch_skips (batch_id, key, job_id)
				SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?3) WHERE ${guard(4)}
				ON CONFLICT DO NOTHING`,
			)
			.bind(batch.id, page, JSON.stringify(plan.skip.map((s) => [s.key, s.jobId])), ...cap),
		// The counts add what the inserts above wrote, not what the plan held: a page that repeats keys
		// the batch already has (a checkpoint off by one) adds nothing for them, so the batch still
		// settles. `written` is this page's fresh job ids that exist now; `missed` the missing keys
		// recorded by this page; changes() is the number of skips the statement just before inserted
		// (the subqueries of this statement do not change it).
		db
			.prepare(
				`WITH written AS (SELECT 1 FROM jobs WHERE id IN (SELECT value FROM json_each(?4))),
					missed AS (SELECT 1 FROM batch_missing WHERE batch_id = ?1 AND page = ?2)
				UPDATE batches SET pages_listed = ?2 + 1, list_cursor = ?3, unsent_page = ?2, unsent = ?4,
					total = total + (SELECT count(*) FROM written) + (SELECT count(*) FROM missed) + changes(),
					queued = queued + (SELECT count(*) FROM written), missing = missing + (SELECT count(*) FROM missed),
					skipped = skipped + changes(),
					status = CASE WHEN ?5 THEN 'running' ELSE status END,
					listed_at = CASE WHEN ?5 THEN ?6 ELSE listed_at END, updated_at = ?6
				WHERE id = ?1 AND status = 'listing' AND pages_listed = ?2 AND ${underCap(7)}
				RETURNING *`,
			)
			.bind(batch.id, page, plan.nextCursor, freshIds, done ? 1 : 0, now, ...cap),
		...(done ? settleBatchStatements(db, { batchId: batch.id }, settleEventId, now) : []),
		// After a refusal: still listing at this page means the cap held it back.
		db.prepare("SELECT * FROM batches WHERE id = ?1 AND status = 'listing' AND pages_listed = ?2").bind(batch.id, page),
	];
	// The page's jobs are counted in the statistics once per scope (not once a job by the trigger):
	// between the bracket's two statements, right after their insert (shared/jobs/batched-counts.ts).
	const [defer, resume] = deferredCountsBracket(db);
	const all = await db.batch([
		defer,
		...statements.slice(0, 1),
		insertedCountsStatement(db, freshIds),
		...statements.slice(1),
		resume,
	]);
	const results = [all[1], ...all.slice(3, -1)];
	const [advanced] = batchRows(results[3], BatchRow);
	if (!advanced) return batchRows(results.at(-1), BatchRow).length > 0 ? { kind: "held" } : { kind: "stale" };
	return {
		kind: "committed",
		queued: batchRows(results[0], WrittenJob).map((j) => j.id),
		settled: done ? settledBatch(results[4], settleEventId) : null,
		batch: advanced,
	};
}

/**
 * Commits page `page` of a dry run: only the counts (what would be queued, skipped, missing) and the
 * advanced checkpoint, guarded as any page; no job, skip or missing row. The last page leaves the
 * batch `planned`. Returns the batch, or null when the checkpoint had moved (a duplicate).
 */
export async function commitPlannedPage(
	db: D1Database,
	batch: BatchRow,
	page: number,
	plan: PagePlan,
	now: number,
): Promise<BatchRow | null> {
	const done = plan.nextCursor === null;
	return db
		.prepare(
			`UPDATE batches SET pages_listed = ?2 + 1, list_cursor = ?3, planned = planned + ?4,
				total = total + ?4 + ?5 + ?6, skipped = skipped + ?5, missing = missing + ?6,
				status = CASE WHEN ?7 THEN 'planned' ELSE status END,
				listed_at = CASE WHEN ?7 THEN ?8 ELSE listed_at END, updated_at = ?8
			WHERE id = ?1 AND status = 'listing' AND dry_run = 1 AND pages_listed = ?2
			RETURNING *`,
		)
		.bind(batch.id, page, plan.nextCursor, plan.queue.length, plan.skip.length, plan.missing.length, done ? 1 : 0, now)
		.first()
		.then(parseRow(BatchRow));
}

/** The page's caption messages are sent: forget its job ids (unless a later page has replaced them). */
export async function clearUnsent(db: D1Database, batchId: string, page: number): Promise<void> {
	await db
		.prepare("UPDATE batches SET unsent = NULL, unsent_page = NULL WHERE id = ?1 AND unsent_page = ?2")
		.bind(batchId, page)
		.run();
}

const JobId = z.object({ id: z.string() });

/** Of a page's job ids, those still queued (a cancel may have ended the others). */
export async function stillQueued(db: D1Database, ids: string[]): Promise<string[]> {
	if (ids.length === 0) return [];
	const rows = await db
		.prepare("SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'queued'")
		.bind(JSON.stringify(ids))
		.all()
		.then(parseRows(JobId));
	return rows.map((r) => r.id);
}

/** A held page's checkpoint is alive: its `updated_at` moves, so the stall sweeper leaves it to its message. */
export async function touchListing(db: D1Database, batchId: string, page: number, now: number): Promise<void> {
	await db
		.prepare("UPDATE batches SET updated_at = ?3 WHERE id = ?1 AND status = 'listing' AND pages_listed = ?2")
		.bind(batchId, page, now)
		.run();
}

const Stalled = BatchRow.pick({ id: true, pages_listed: true, unsent_page: true });
export type StalledListing = z.infer<typeof Stalled>;

/**
 * Listings whose checkpoint has not moved since `before` (their page message was lost, or dropped
 * after its retries): marked touched, so that the next sweep leaves them to the message it sends.
 */
export async function takeStalledListings(db: D1Database, before: number, now: number, limit = 100) {
	return db
		.prepare(
			`UPDATE batches SET updated_at = ?2
			WHERE id IN (SELECT id FROM batches WHERE (status = 'listing' OR unsent IS NOT NULL) AND updated_at < ?1 LIMIT ?3)
			RETURNING id, pages_listed, unsent_page`,
		)
		.bind(before, now, limit)
		.all()
		.then(parseRows(Stalled));
}
