/** Reading one batch row: the consumer (no scope) and the status API (the caller's scope) share it. */
import { parseRow } from "../d1-rows";
import { BatchRow } from "./schema";

/** SQL condition for batches inside the scope bound to `param` (NULL: everything). */
export const batchInScope = (param: string) =>
	`(${param} IS NULL OR substr(key_prefix, 1, length(${param})) = ${param})`;

/** The batch `id`, or null when there is none (or it lies outside `scope`; null scope: every batch). */
export async function getBatchRow(db: D1Database, id: string, scope: string | null = null): Promise<BatchRow | null> {
	return db
		.prepare(`SELECT * FROM batches WHERE id = ?1 AND ${batchInScope("?2")}`)
		.bind(id, scope)
		.first()
		.then(parseRow(BatchRow));
}
