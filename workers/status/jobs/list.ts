/**
 * Listing jobs newest first with an opaque keyset cursor over (created_at DESC, id DESC)
 * (../keyset-cursor.ts), reading a bounded number of rows whatever the filters and the size of
 * the table. The most selective filter the indexes serve leads the walk: an exact `key`
 * (jobs_key_created), a `batch_id` (jobs_batch_created), `failed` or `cancelled`
 * (jobs_status_created, which holds only those), `queued` or `processing` (jobs_unfinished, which
 * holds the jobs of both: the status is checked on the rows walked, so that a claim moves no index
 * entry; migrations/0031_claims_unindexed.sql), `succeeded` (nearly every job is: its list walks
 * jobs_created, where nearly every row matches), or none (jobs_created);
 * `created_after`/`created_before` are ranges of the same index. The other filters
 * are checked on at most SCAN_ROWS walked rows a page (../capped-scan.ts): such a page may hold
 * fewer jobs than `limit`, and still a `next_cursor`.
 *
 * A prefix with few jobs is better served by its own key range: when the prefixes hold fewer
 * than SPARSE_PREFIX_ROWS jobs (counted on the key index, stopping there), their jobs are
 * sorted whole, which reads fewer than that many index entries.
 */
import { z } from "zod";
import { parseRow, parseRows } from "../../../shared/d1-rows";
import { JobRow, type JobStatus } from "../../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../../shared/jobs/texts";
import { type Condition, cappedScan, SCAN_ROWS } from "../capped-scan";
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
	/** D1's count of the rows the page examined (meta.rows_read), at most MAX_LIST_ROWS_READ. */
	rowsRead: number;
}

/** Below this many jobs under the prefixes, a prefix page sorts the prefix's own jobs. */
export const SPARSE_PREFIX_ROWS = 1000;

/**
 * The most rows a page reads: the sparse-prefix count, then either the sorted prefix (its index
 * entries and the page's rows) or a capped walk (SCAN_ROWS, the page's rows, and the walk's end).
 */
export const MAX_LIST_ROWS_READ = SPARSE_PREFIX_ROWS + 2 * SCAN_ROWS + 2 * 101;

const CountRow = z.object({ n: z.number().int() });

function prefixRanges(filter: JobFilter, column: string): Condition[] {
	return filter.prefixes.map((prefix) => prefixCondition(column, prefix)).filter((r) => r.params.length > 0);
}

/** How many jobs the prefixes hold, counted on the covering key index up to SPARSE_PREFIX_ROWS. */
async function countPrefix(db: D1Database, ranges: Condition[]): Promise<{ n: number; rowsRead: number }> {
	const result = await db
		.prepare(`SELECT count(*) AS n FROM (SELECT 1 FROM jobs WHERE ${ranges.map((r) => r.sql).join(" AND ")} LIMIT ?)`)
		.bind(...ranges.flatMap((r) => r.params), SPARSE_PREFIX_ROWS)
		.all();
	const row = parseRow(CountRow)(result.results[0] ?? null);
	return { n: row?.n ?? 0, rowsRead: result.meta.rows_read ?? 0 };
}

function timeConditions(filter: JobFilter): Condition[] {
	const conditions: Condition[] = [];
	if (filter.createdAfter !== undefined) conditions.push({ sql: "created_at > ?", params: [filter.createdAfter] });
	if (filter.createdBefore !== undefined) conditions.push({ sql: "created_at < ?", params: [filter.createdBefore] });
	return conditions;
}

/** A filter on a column, with the index that can lead the walk on it (null: checked on the walk). */
type Equality = Condition & { index: string | null };

/** The equality filters, the one the walk's index serves first, each with its index. */
function equalities(filter: JobFilter): Equality[] {
	const conditions: Equality[] = [];
	if (filter.key !== undefined) conditions.push({ sql: "key = ?", params: [filter.key], index: "jobs_key_created" });
	if (filter.batchId !== undefined) {
		conditions.push({ sql: "batch_id = ?", params: [filter.batchId], index: "jobs_batch_created" });
	}
	if (filter.status === "succeeded") conditions.push({ sql: "status = ?", params: [filter.status], index: null });
	else if (filter.status === "queued" || filter.status === "processing") {
		// The unfinished jobs lead the walk (the partial index's own condition, written out, lets
		// SQLite take it); the status is checked on the rows walked.
		conditions.push({ sql: "completed_at IS NULL", params: [], index: "jobs_unfinished" });
		conditions.push({ sql: "status = ?", params: [filter.status], index: null });
	} else if (filter.status !== undefined) {
		// The partial index's own condition, written out, lets SQLite take it for a bound status.
		conditions.push({
			sql: "status = ? AND status IN ('failed', 'cancelled')",
			params: [filter.status],
			index: "jobs_status_created",
		});
	}
	return conditions;
}

/** A sparse prefix: sort its (created_at, id) index entries, then read only the page's rows. */
async function sortedPrefixPage(
	db: D1Database,
	filter: JobFilter,
	ranges: Condition[],
	limit: number,
	after: Cursor | null,
): Promise<JobPage> {
	const conditions = [...ranges, ...equalities(filter), ...timeConditions(filter)];
	if (after !== null) {
		conditions.push({ sql: "created_at <= ? AND (created_at < ? OR id < ?)", params: [after.t, after.t, after.i] });
	}
	const result = await db
		.prepare(
			`SELECT ${JOB_COLUMNS} FROM jobs WHERE id IN (SELECT id FROM jobs INDEXED BY jobs_key_created
				WHERE ${conditions.map((c) => c.sql).join(" AND ")}
				ORDER BY created_at DESC, id DESC LIMIT ?)
			ORDER BY created_at DESC, id DESC`,
		)
		.bind(...conditions.flatMap((c) => c.params), limit + 1)
		.all();
	const page = keysetPage(parseRows(JobRow)(result), limit, jobCursor.encode);
	return { ...page, rowsRead: result.meta.rows_read ?? 0 };
}

export async function listJobs(
	db: D1Database,
	filter: JobFilter,
	limit: number,
	after: Cursor | null,
): Promise<JobPage> {
	let counted = 0;
	if (filter.key === undefined) {
		const ranges = prefixRanges(filter, "key");
		if (ranges.length > 0) {
			const { n, rowsRead } = await countPrefix(db, ranges);
			if (n < SPARSE_PREFIX_ROWS) {
				const page = await sortedPrefixPage(db, filter, ranges, limit, after);
				return { ...page, rowsRead: page.rowsRead + rowsRead };
			}
			counted = rowsRead;
		}
	}
	const [first, ...rest] = equalities(filter);
	const lead = first?.index ? first : undefined;
	const others = lead || !first ? rest : [first, ...rest];
	// `+key` keeps SQLite off the key index, so that it walks a newest-first one.
	const residual = [...others, ...prefixRanges(filter, "+key")];
	const page = await cappedScan(db, {
		table: "jobs",
		index: lead?.index ?? "jobs_created",
		served: [...(lead ? [{ sql: lead.sql, params: lead.params }] : []), ...timeConditions(filter)],
		residual,
		after,
		limit,
		columns: JOB_COLUMNS,
		schema: JobRow,
		encode: jobCursor.encode,
	});
	return { ...page, rowsRead: page.rowsRead + counted };
}
