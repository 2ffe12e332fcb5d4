/**
 * Listing by prefix takes one of two query shapes (workers/status/jobs/list.ts): a sparse prefix sorts its
 * own jobs, a dense one (≥ SPARSE_PREFIX_ROWS jobs) walks the newest-first index with a cap. Both must
 * page exactly like the plain definition: newest first by (created_at, id), no gaps, no duplicates.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { parseRows } from "../../shared/d1-rows";
import { JobRow } from "../../shared/jobs/schema";
import { jobCursor, listJobs, SPARSE_PREFIX_ROWS } from "../../workers/status/jobs/list";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";

/** `count` jobs under `prefix`; every three share a millisecond; one in four failed. */
async function seedPrefix(prefix: string, count: number, base: number): Promise<void> {
	await insertJobs(
		Array.from({ length: count }, (_, i) => ({
			key: `${prefix}${String(i).padStart(6, "0")}.jpg`,
			status: i % 4 === 0 ? ("failed" as const) : ("succeeded" as const),
			attempts: 1,
			created_at: base + Math.floor(i / 3) * 1000,
			updated_at: base,
		})),
	);
}

/** Every page of a listing, following its cursors (bounded). */
async function allPages(prefix: string, limit: number, status?: "failed") {
	const ids: string[] = [];
	let after = null;
	for (let pages = 0; pages < 1000; pages++) {
		const page = await listJobs(env.DB, { prefixes: [prefix], ...(status ? { status } : {}) }, limit, after);
		ids.push(...page.rows.map((r) => r.id));
		if (page.nextCursor === null) return ids;
		after = jobCursor.decode(page.nextCursor);
	}
	throw new Error("too many pages");
}

async function expectedIds(prefix: string, status?: string): Promise<string[]> {
	const rows = await env.DB.prepare(
		`SELECT id FROM jobs WHERE substr(key, 1, length(?1)) = ?1 AND (?2 IS NULL OR status = ?2)
		ORDER BY created_at DESC, id DESC`,
	)
		.bind(prefix, status ?? null)
		.all()
		.then(parseRows(JobRow.pick({ id: true })));
	return rows.map((r) => r.id);
}

describe("listing by prefix pages the same way whichever query shape serves it", () => {
	it("a dense prefix (at least SPARSE_PREFIX_ROWS jobs) pages newest first without gaps or duplicates", async () => {
		const prefix = uniqueKey("dense/");
		await seedPrefix(prefix, SPARSE_PREFIX_ROWS + 150, Date.now() - 86_400_000);
		// Jobs just outside the prefix, on both sides of its key range, must never appear.
		await seedPrefix(`${prefix.slice(0, -1)}.`, 5, Date.now());
		await seedPrefix(`${prefix}`.replace(/\/$/, "0"), 5, Date.now());
		const expected = await expectedIds(prefix);
		expect(expected).toHaveLength(SPARSE_PREFIX_ROWS + 150);
		expect(await allPages(prefix, 100)).toEqual(expected);
		expect(await allPages(prefix, 100, "failed")).toEqual(await expectedIds(prefix, "failed"));
	});

	it("a sparse prefix pages newest first without gaps or duplicates", async () => {
		const prefix = uniqueKey("sparse/");
		await seedPrefix(prefix, 45, Date.now() - 3_600_000);
		const expected = await expectedIds(prefix);
		expect(expected).toHaveLength(45);
		expect(await allPages(prefix, 7)).toEqual(expected);
		expect(await allPages(prefix, 7, "failed")).toEqual(await expectedIds(prefix, "failed"));
	});
});
