/**
 * The storage of a fresh runtime, for a file that shares its runtime with the files before it
 * (QUIET_START in vitest.config.ts): D1 as the migrations make it, and empty buckets.
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { z } from "zod";
import { parseRows } from "../../shared/d1-rows";

/**
 * Tables whose rows this isolate's module state stands for, kept as they are: the secrets key's
 * canary (shared/webhooks/secrets-key.ts checks it once per isolate and key) and the shared texts
 * (shared/jobs/texts.ts writes a text once per isolate). A fresh runtime has neither the rows nor
 * the memory of them; this one keeps both.
 */
const KEPT = ["secrets_canary", "job_texts"] as const;

const SchemaObject = z.object({ type: z.enum(["table", "view"]), name: z.string() });
const Row = z.record(z.string(), z.union([z.string(), z.number(), z.null()]));

/** Deletes every object of `bucket`, a listing page at a time. */
async function emptyBucket(bucket: R2Bucket): Promise<void> {
	for (;;) {
		const listed = await bucket.list({ limit: 1000 });
		if (listed.objects.length === 0) return;
		await bucket.delete(listed.objects.map((o) => o.key));
	}
}

/**
 * Drops every table and view (the migrations' record of themselves too) and applies the
 * migrations again, so that every row, counter and seed is what a fresh runtime starts with; then
 * empties the buckets.
 */
export async function freshStorage(): Promise<void> {
	const kept = await Promise.all(
		KEPT.map((table) => env.DB.prepare(`SELECT * FROM ${table}`).all().then(parseRows(Row))),
	);
	const objects = await env.DB.prepare(
		`SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')
		AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`,
	)
		.all()
		.then(parseRows(SchemaObject));
	const drops = [...objects].sort((a, b) => (a.type === b.type ? 0 : a.type === "view" ? -1 : 1));
	await env.DB.batch(drops.map((o) => env.DB.prepare(`DROP ${o.type.toUpperCase()} "${o.name}"`)));
	await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
	const inserts = KEPT.flatMap((table, i) =>
		(kept[i] ?? []).map((row) => {
			const columns = Object.keys(row);
			return env.DB.prepare(
				`INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
			).bind(...Object.values(row));
		}),
	);
	if (inserts.length > 0) await env.DB.batch(inserts);
	await Promise.all([emptyBucket(env.BUCKET), emptyBucket(env.ARCHIVE_BUCKET)]);
}
