/** `r2c … --out results.csv` writes cells a spreadsheet opens as text, as the API's export does. */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { writeResults } from "../../cli/results.ts";
import type { Job } from "../../client/index.ts";

describe("r2c --out x.csv", () => {
	it("prefixes with ' a caption, key or prompt that a spreadsheet would run as a formula", async () => {
		const file = path.join(mkdtempSync(path.join(tmpdir(), "r2c-csv-")), "results.csv");
		const job = {
			id: "job_1",
			key: "@evil.jpg",
			status: "succeeded",
			caption: "=cmd|' /C calc'!A0",
			model: "@cf/x",
			prompt: "+1",
			error: null,
			completed_at: "2026-12-05T00:00:00.000Z",
		} as unknown as Job;
		await writeResults(file, [job]);
		const [row] = parse(readFileSync(file, "utf8"), { columns: true }) as Record<string, string>[];
		expect(row).toMatchObject({ key: "'@evil.jpg", caption: "'=cmd|' /C calc'!A0", prompt: "'+1", model: "'@cf/x" });
	});
});
