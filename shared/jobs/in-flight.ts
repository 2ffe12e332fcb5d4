/**
 * An API key's jobs in flight (queued or processing), which MAX_JOBS_IN_FLIGHT caps: the status
 * Worker counts them before it makes a job for the key, the consumer's batch lister before it lists
 * a page of the key's batch. The count reads the key's entries of the partial index
 * `jobs_key_in_flight` (migration 0007), at most the cap's worth, never the table.
 */
import { z } from "zod";
import { parseRow } from "../d1-rows";

const CountRow = z.object({ n: z.number().int() });

/** The key's queued or processing jobs, counted up to `cap`. */
export async function countJobsInFlight(db: D1Database, keyId: string, cap: number): Promise<number> {
	const row = await db
		.prepare(
			`SELECT count(*) AS n FROM (SELECT 1 FROM jobs
				WHERE key_id = ?1 AND status IN ('queued', 'processing') LIMIT ?2)`,
		)
		.bind(keyId, cap)
		.first()
		.then(parseRow(CountRow));
	return row?.n ?? 0;
}
