/**
 * The edge of a capped walk (workers/status/capped-scan.ts): a page that walked its SCAN_ROWS rows
 * without filling up hands back a cursor at the last row it walked, so the next page starts at the
 * row right after it. A match sitting exactly at walk position SCAN_ROWS is the first row of the
 * next page, never skipped.
 */
import { describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { SCAN_ROWS } from "../../workers/status/capped-scan";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";
import { call, pageOf, parsed } from "./support";

describe("a capped walk's edge", () => {
	it("a batch's only failed job, just past SCAN_ROWS newer succeeded ones, comes back when paged to the end", async () => {
		const prefix = uniqueKey("edge/");
		const batchId = `bat_${prefix.replace(/\W/g, "").toUpperCase()}`;
		const base = Date.now() - 3_600_000;
		const [failed] = await insertJobs([
			{ key: `${prefix}failed.jpg`, source: "batch", batch_id: batchId, status: "failed", created_at: base },
			// The walk meets these first (newest first): SCAN_ROWS rows the status filter rejects.
			...Array.from({ length: SCAN_ROWS }, (_, i) => ({
				key: `${prefix}${String(i).padStart(4, "0")}.jpg`,
				source: "batch" as const,
				batch_id: batchId,
				status: "succeeded" as const,
				created_at: base + 1 + i,
			})),
		]);

		const found: Job[] = [];
		let cursor: string | null = null;
		let pages = 0;
		do {
			const query: string = `/v1/jobs?batch_id=${batchId}&status=failed&limit=10${cursor ? `&cursor=${cursor}` : ""}`;
			const page = await parsed(await call("GET", query), pageOf(Job));
			found.push(...page.data);
			cursor = page.next_cursor;
			pages++;
		} while (cursor !== null && pages < 10);
		expect(found.map((j) => j.id)).toEqual([failed?.id]);
		// The first page stopped at its cap with a cursor; the second found the job.
		expect(pages).toBe(2);
	}, 60_000);
});
