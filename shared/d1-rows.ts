/**
 * Reading D1 through zod: every row a query returns is parsed with the schema of its table (or of
 * the query's projection), so a drift between the schema and the code fails loudly at the boundary
 * instead of travelling on as a wrongly typed value. D1's `first<T>()` and `all<T>()` only cast.
 *
 *     const job = await db.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first().then(parseRow(JobRow));
 */
import type { z } from "zod";

/** For `.first()`: the row parsed, or null when the statement returned none. */
export const parseRow =
	<T>(schema: z.ZodType<T>) =>
	(row: Record<string, unknown> | null): T | null =>
		row === null ? null : schema.parse(row);

/** For `.all()`: every row parsed. */
export const parseRows =
	<T>(schema: z.ZodType<T>) =>
	(result: D1Result): T[] =>
		result.results.map((row) => schema.parse(row));

/** The rows one statement of a `db.batch` returned, parsed. */
export function batchRows<T>(result: D1Result | undefined, schema: z.ZodType<T>): T[] {
	return (result?.results ?? []).map((row) => schema.parse(row));
}
