/** GET /v1/jobs: filters, the keyset cursor under concurrent inserts, and every bad parameter. */
import { describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { call, errorOf, invalidFields, pageOf, parsed } from "./support";

async function page(query: string) {
	const res = await call("GET", `/v1/jobs?${query}`);
	expect(res.status, await res.clone().text()).toBe(200);
	return parsed(res, pageOf(Job));
}

/** Jobs under a fresh prefix; several share a millisecond so the id tie-break matters. */
async function seed(count: number, base: number): Promise<{ prefix: string; ids: string[] }> {
	const prefix = uniqueKey("list/");
	const ids: string[] = [];
	for (let i = 0; i < count; i++) {
		const job = await insertJob({ key: `${prefix}${i}.png`, created_at: base + Math.floor(i / 3) * 1000 });
		ids.push(job.id);
	}
	return { prefix, ids };
}

describe("GET /v1/jobs", () => {
	it("pages newest first with no duplicates and no gaps while jobs are inserted between pages", async () => {
		const base = Date.now() - 3_600_000;
		const { prefix, ids } = await seed(25, base);
		const expected = await page(`prefix=${encodeURIComponent(prefix)}&limit=100`);
		expect(expected.data.map((j) => j.id).sort()).toEqual([...ids].sort());
		expect(expected.next_cursor).toBeNull();

		const seen: string[] = [];
		let cursor: string | null = null;
		let pages = 0;
		let inserted = 0;
		do {
			const query: string = `prefix=${encodeURIComponent(prefix)}&limit=4${cursor ? `&cursor=${cursor}` : ""}`;
			const p = await page(query);
			seen.push(...p.data.map((j) => j.id));
			cursor = p.next_cursor;
			pages++;
			// New jobs arrive between pages, newer than everything seen so far (also within the same ms).
			await insertJob({ key: `${prefix}new-${inserted++}.png` });
		} while (cursor !== null);

		expect(pages).toBe(7);
		expect(seen).toEqual(expected.data.map((j) => j.id));
		expect(new Set(seen).size).toBe(25);
		const times = expected.data.map((j) => j.created_at);
		expect([...times].sort().reverse()).toEqual(times);
	});

	it("filters by status, exact key, prefix and creation time", async () => {
		const base = Date.parse("2026-01-01T00:00:00.000Z");
		const { prefix, ids } = await seed(6, base);
		const { id: done } = await insertJob({ key: `${prefix}done.png`, created_at: base, status: "succeeded" });

		const succeeded = await page(`prefix=${encodeURIComponent(prefix)}&status=succeeded`);
		expect(succeeded.data.map((j) => j.id)).toEqual([done]);

		const exact = await page(`key=${encodeURIComponent(`${prefix}4.png`)}`);
		expect(exact.data.map((j) => j.id)).toEqual([ids[4]]);

		// Jobs 3-5 were created at base+1s: strictly after base and strictly before base+2s.
		const window = await page(
			`prefix=${encodeURIComponent(prefix)}&created_after=2026-01-01T00:00:00.000Z&created_before=2026-01-01T00:00:02Z`,
		);
		expect(window.data.map((j) => j.id).sort()).toEqual([ids[3], ids[4], ids[5]].sort());

		// A prefix is a prefix, not a pattern: `%` and `_` match only themselves.
		expect((await page(`prefix=${encodeURIComponent(prefix.replace(/.$/, "_"))}`)).data).toEqual([]);
	});

	it("defaults to 20 jobs per page", async () => {
		const { prefix } = await seed(21, Date.now() - 7_200_000);
		const p = await page(`prefix=${encodeURIComponent(prefix)}`);
		expect(p.data).toHaveLength(20);
		expect(p.next_cursor).not.toBeNull();
	});

	for (const [query, field] of [
		["limit=0", "limit"],
		["limit=101", "limit"],
		["limit=abc", "limit"],
		["limit=2.5", "limit"],
		["status=done", "status"],
		["created_after=yesterday", "created_after"],
		["created_before=2026-13-01T00:00:00Z", "created_before"],
		["created_after=2026-01-01", "created_after"],
		["cursor=not-a-cursor", "cursor"],
		[`cursor=${btoa(JSON.stringify({ t: "x", i: "job_1" }))}`, "cursor"],
		["cursor=%2B%2B%2B", "cursor"],
	] as const) {
		it(`rejects ${query} with a 400 naming ${field}`, async () => {
			const res = await call("GET", `/v1/jobs?${query}`);
			expect(res.status).toBe(400);
			expect(await invalidFields(res.clone())).toEqual([field]);
			const error = await errorOf(res);
			expect(error.code).toBe("invalid_request");
			expect(error.message).toContain(field);
		});
	}
});

describe("GET /v1/jobs/{id}", () => {
	it("returns the job JSON", async () => {
		const key = uniqueKey("one.png");
		const { id } = await insertJob({ key, created_at: Date.parse("2026-02-03T04:05:06.007Z") });
		const res = await call("GET", `/v1/jobs/${id}`);
		expect(res.status).toBe(200);
		expect(await res.json()).toMatchObject({ id, key, status: "queued", created_at: "2026-02-03T04:05:06.007Z" });
	});

	it("an unknown id is a 404", async () => {
		const res = await call("GET", "/v1/jobs/job_00000000000000000000000000");
		expect(res.status).toBe(404);
		expect((await errorOf(res)).code).toBe("not_found");
	});
});
