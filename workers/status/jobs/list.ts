/**
 * Listing jobs newest first with an opaque keyset cursor over (created_at DESC, id DESC)
 * (../keyset-cursor.ts). Served by the jobs_created / jobs_status_created / jobs_key_created /
 * jobs_batch_created indexes.
 */
import { z } from "zod";
import { parseRow, parseRows } from "../../../shared/d1-rows";
import { JobRow, type JobStatus } from "../../../shared/jobs/schema";
import { keysetCursor, keysetPage, type Position } from "../keyset-cursor";
import { prefixCondition } from "./key-range";

export interface JobFilter {
	status?: JobStatus;
	key?: string;
	batchId?: string;
	/** Prefixes that must all match (the requested one and the caller's scope). */
	prefixes: string[];
	/** Exclusive bounds on created_at, in Unix milliseconds. */
	createdAfter?: number;
	createdBefore?: number;
}

export const jobCursor = keysetCursor("job_");
export type Cursor = Position;

export interface JobPage {
	rows: JobRow[];
	nextCursor: string | null;
}

/**
 * A key range cannot serve both the prefix and the newest-first order, so a prefix page either
 * sorts the prefix's jobs (cheap while they are few) or walks jobs newest first until the page is
 * full (cheap when the prefix holds many of them). Beyond this many jobs under the prefixes the
 * second way is used: each way then costs at most about this many index entries, whatever the
 * size of the table (up to a walk of limit × table / DENSE_PREFIX_ROWS for a large prefix whose
 * jobs are all old).
 */
export const DENSE_PREFIX_ROWS = 2000;

const CountRow = z.object({ n: z.number().int() });

/** Whether the requested prefixes hold at least DENSE_PREFIX_ROWS jobs (counted on the covering key index, stopping there). */
async function isDensePrefix(db: D1Database, filter: JobFilter): Promise<boolean> {
	if (filter.key !== undefined) return false;
	const ranges = filter.prefixes.map((prefix) => prefixCondition("key", prefix)).filter((r) => r.params.length > 0);
	if (ranges.length === 0) return false;
	const row = await db
		.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM jobs WHERE ${ranges.map((r) => r.sql).join(" AND ")} LIMIT ?)`)
		.bind(...ranges.flatMap((r) => r.params), DENSE_PREFIX_ROWS)
		.first()
		.then(parseRow(CountRow));
	return (row?.n ?? 0) >= DENSE_PREFIX_ROWS;
}

export async function listJobs(
	db: D1Database,
	filter: JobFilter,
	limit: number,
	after: Cursor | null,
): Promise<JobPage> {
	const where: string[] = [];
	const params: (string | number)[] = [];
	if (filter.status !== undefined) {
		where.push("status = ?");
		params.push(filter.status);
	}
	if (filter.key !== undefined) {
		where.push("key = ?");
		params.push(filter.key);
	}
	if (filter.batchId !== undefined) {
		where.push("batch_id = ?");
		params.push(filter.batchId);
	}
	const dense = await isDensePrefix(db, filter);
	for (const prefix of filter.prefixes) {
		// `+key` keeps SQLite off the key index, so it walks a newest-first index and stops early.
		const range = prefixCondition(dense ? "+key" : "key", prefix);
		where.push(range.sql);
		params.push(...range.params);
	}
	if (filter.createdAfter !== undefined) {
		where.push("created_at > ?");
		params.push(filter.createdAfter);
	}
	if (filter.createdBefore !== undefined) {
		where.push("created_at < ?");
		params.push(filter.createdBefore);
	}
	if (after !== null) {
		where.push("(created_at < ? OR (created_at = ? AND id < ?))");
		params.push(after.t, after.t, after.i);
	}
	const conditions = where.length ? `WHERE ${where.join(" AND ")}` : "";
	const sortIdsFirst = filter.prefixes.length > 0 && !dense && filter.key === undefined;
	const sql = sortIdsFirst
		? // A sparse prefix: sort the matching (created_at, id) entries of the covering key index, then
			// read only the page's rows (sorting whole rows cost ~8× more at 1,000 matches).
			`SELECT * FROM jobs WHERE id IN (SELECT id FROM jobs ${conditions} ORDER BY created_at DESC, id DESC LIMIT ?)
			ORDER BY created_at DESC, id DESC`
		: `SELECT * FROM jobs ${conditions} ORDER BY created_at DESC, id DESC LIMIT ?`;
	// One extra row tells whether there is a next page without a COUNT.
	const results = await db
		.prepare(sql)
		.bind(...params, limit + 1)
		.all()
		.then(parseRows(JobRow));
	return keysetPage(results, limit, jobCursor.encode);
}
