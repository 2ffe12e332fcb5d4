/**
 * Newest-first pages that read a bounded number of rows whatever the filters: the rows are walked
 * along an index that serves the leading filter and the (created_at DESC, id DESC) order, at most
 * SCAN_ROWS of them a page, and the remaining filters are applied to those. A page therefore holds
 * fewer items than `limit` (even none) when the walk met few matches; its `nextCursor` is then the
 * position where the walk stopped, so the client keeps paging until `next_cursor` is null.
 * `rowsRead` is D1's own count of the rows the page examined.
 */
import { z } from "zod";
import { batchRows } from "../../shared/d1-rows";
import type { Position } from "./keyset-cursor";

const Edge = z.object({ created_at: z.number().int(), id: z.string() });

/** Rows a page walks at most along its index before it stops with a cursor. */
export const SCAN_ROWS = 1000;

export interface Condition {
	sql: string;
	params: (string | number)[];
}

export interface CappedPage<T> {
	rows: T[];
	nextCursor: string | null;
	rowsRead: number;
}

export interface CappedScan<T> {
	table: string;
	/** The index the walk takes (it must serve `served` and the order). */
	index: string;
	/** Conditions the index serves (its leading equality and the created_at range). */
	served: Condition[];
	/** Conditions checked on the rows walked (none: every walked row matches). */
	residual: Condition[];
	after: Position | null;
	limit: number;
	/** The columns a row is read with (default `*`). */
	columns?: string;
	schema: z.ZodType<T>;
	encode: (position: { created_at: number; id: string }) => string;
}

const where = (conditions: Condition[]) =>
	conditions.length === 0 ? "" : `WHERE ${conditions.map((c) => `(${c.sql})`).join(" AND ")}`;

export async function cappedScan<T extends { created_at: number; id: string }>(
	db: D1Database,
	scan: CappedScan<T>,
): Promise<CappedPage<T>> {
	const cursor: Condition[] =
		scan.after === null
			? []
			: // `created_at <= t` bounds the index range; the rest only sorts out the rows of that millisecond.
				[
					{
						sql: "created_at <= ? AND (created_at < ? OR id < ?)",
						params: [scan.after.t, scan.after.t, scan.after.i],
					},
				];
	const served = [...scan.served, ...cursor];
	const order = "ORDER BY created_at DESC, id DESC";
	const walk = `${scan.table} INDEXED BY ${scan.index}`;
	const columns = scan.columns ?? "*";
	const servedParams = served.flatMap((c) => c.params);
	const residualParams = scan.residual.flatMap((c) => c.params);
	// One extra row tells whether there is a next page without a COUNT.
	const sql =
		scan.residual.length === 0
			? `SELECT ${columns} FROM ${walk} ${where(served)} ${order} LIMIT ?`
			: `SELECT ${columns} FROM ${scan.table} WHERE id IN (
				SELECT id FROM (SELECT * FROM ${walk} ${where(served)} ${order} LIMIT ${SCAN_ROWS})
				${where(scan.residual)} ${order} LIMIT ?)
			${order}`;
	const result = await db
		.prepare(sql)
		.bind(...servedParams, ...residualParams, scan.limit + 1)
		.all();
	let rowsRead = result.meta.rows_read ?? 0;
	const found = batchRows(result, scan.schema);
	const rows = found.slice(0, scan.limit);
	const last = rows.at(-1);
	if (found.length > scan.limit && last) return { rows, nextCursor: scan.encode(last), rowsRead };
	if (scan.residual.length === 0) return { rows, nextCursor: null, rowsRead };
	// The page is not full: did the walk stop at its cap? Then the next page starts where it stopped.
	const edgeResult = await db
		.prepare(`SELECT created_at, id FROM ${walk} ${where(served)} ${order} LIMIT 1 OFFSET ${SCAN_ROWS - 1}`)
		.bind(...servedParams)
		.all();
	rowsRead += edgeResult.meta.rows_read ?? 0;
	const [edge] = batchRows(edgeResult, Edge);
	return { rows, nextCursor: edge ? scan.encode(edge) : null, rowsRead };
}
