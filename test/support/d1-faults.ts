/**
 * A D1 outage for chosen rows: while `run` runs, a trigger in the real local database makes every
 * write to `table` that matches `when` fail, the way an unavailable D1 fails a statement. Nothing
 * stands in for D1 or for the project's code; the trigger is dropped afterwards.
 */
import { env } from "cloudflare:workers";

let triggers = 0;

export async function whileD1Refuses<T>(
	// `when` may name the row as `new.` (INSERT, UPDATE) or `old.` (UPDATE, DELETE).
	refusal: { table: string; write: "INSERT" | "UPDATE" | "DELETE"; when: string },
	run: () => Promise<T>,
): Promise<T> {
	const name = `test_refuse_${Date.now()}_${triggers++}`;
	await env.DB.prepare(
		`CREATE TRIGGER ${name} BEFORE ${refusal.write} ON ${refusal.table} WHEN ${refusal.when}
		BEGIN SELECT RAISE(ABORT, 'D1 refused the write (test fault)'); END`,
	).run();
	try {
		return await run();
	} finally {
		await env.DB.prepare(`DROP TRIGGER ${name}`).run();
	}
}

/** A string as an SQL literal, for `when` conditions. */
export const sqlText = (text: string): string => `'${text.replaceAll("'", "''")}'`;
