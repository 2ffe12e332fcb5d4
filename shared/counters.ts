/**
 * The `counters` table: service-wide counts of what left no row behind (messages that were not
 * valid notifications, ignored events, duplicates), shown by `GET /v1/stats`.
 */

/** Adds to named counters in one statement. */
export async function incrementCounters(db: D1Database, counts: ReadonlyMap<string, number>): Promise<void> {
	const entries = [...counts].filter(([, n]) => n > 0);
	if (entries.length === 0) return;
	await db
		.prepare(
			`INSERT INTO counters (name, value)
			SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1) WHERE true
			ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`,
		)
		.bind(JSON.stringify(entries))
		.run();
}
