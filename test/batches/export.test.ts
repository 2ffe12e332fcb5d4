/**
 * GET /v1/batches/{id}/results in each format, parsed back: JSON Lines (the Job JSON of the API),
 * CSV (parsed with csv-parse: captions with commas, quotes and newlines survive), and the Hugging
 * Face imagefolder metadata.jsonl. Large exports stream page by page across many D1 pages.
 */
import { env } from "cloudflare:workers";
import { parse } from "csv-parse/sync";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { Batch } from "../../shared/batches/schema";
import { spreadsheetSafe } from "../../shared/jobs/csv-columns";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { byCodePoint, rowsInKeyOrder } from "../../workers/status/batches/export";
import { call, invalidFields, pageOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { createBatch, putObjects, settled, unsentBatch, waitForBatch } from "./support";

/** A line of the Hugging Face imagefolder metadata.jsonl: exactly these two fields. */
const HfLine = z.strictObject({ file_name: z.string(), text: z.string() });

const TRICKY_PROMPT = 'Say "cheese", then, on a new line,\nsay goodbye';

let prefix: string;
let batch: Batch;
let keys: string[];

beforeAll(async () => {
	emulator.reset();
	prefix = uniqueKey("export/");
	keys = [`${prefix}cats/a.jpg`, `${prefix}cats/b.png`, `${prefix}dogs/c.jpg`];
	await putObjects([keys[0] as string, keys[2] as string]);
	await putObjects([keys[1] as string], "small.png");
	// Not an image: its job fails, and it is left out of the Hugging Face metadata.
	await env.BUCKET.put(`${prefix}notes.md`, "plain text, not an image");
	batch = await waitForBatch((await createBatch({ prefix, prompt: TRICKY_PROMPT })).id, settled);
});

async function results(format: string, id = batch.id): Promise<Response> {
	const res = await call("GET", `/v1/batches/${id}/results?format=${format}`);
	expect(res.status).toBe(200);
	return res;
}

/** The body as UTF-8 text (workerd's `.text()` warns on types it does not know as text, like JSON Lines). */
const bodyText = async (res: Response) => new TextDecoder().decode(await res.arrayBuffer());

async function jobsById(): Promise<Map<string, Job>> {
	const res = await call("GET", `/v1/jobs?batch_id=${batch.id}&limit=100`);
	const page = await parsed(res, pageOf(Job));
	return new Map(page.data.map((job) => [job.id, job]));
}

describe("GET /v1/batches/{id}/results", () => {
	it("jsonl: one Job JSON per line, in key order, equal to the API's jobs", async () => {
		expect(batch.counts).toMatchObject({ total: 4, succeeded: 3, failed: 1 });
		const res = await results("jsonl");
		expect(res.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
		expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${batch.id}.jsonl"`);
		const text = await bodyText(res);
		expect(text.endsWith("\n")).toBe(true);
		const lines = text
			.trimEnd()
			.split("\n")
			.map((line) => Job.parse(JSON.parse(line)));
		expect(lines.map((j) => j.key)).toEqual([...keys, `${prefix}notes.md`]);
		const api = await jobsById();
		for (const job of lines) expect(job).toEqual(api.get(job.id));
		expect(lines.every((j) => j.batch_id === batch.id)).toBe(true);
	});

	it("csv: RFC 4180 with the header row; captions with commas, quotes and newlines parse back exactly", async () => {
		const res = await results("csv");
		expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
		expect(res.headers.get("content-disposition")).toBe(`attachment; filename="${batch.id}.csv"`);
		const text = await bodyText(res);
		expect(text.startsWith("key,status,caption,error_code,error_message,model,prompt,completed_at\r\n")).toBe(true);
		const rows = parse(text, { columns: true }) as Record<string, string>[];
		const api = [...(await jobsById()).values()].sort((a, b) => (a.key < b.key ? -1 : 1));
		expect(rows).toEqual(
			api.map((j) => ({
				key: j.key,
				status: j.status,
				caption: j.caption ?? "",
				error_code: j.error?.code ?? "",
				error_message: j.error?.message ?? "",
				// Model ids begin with @, which a spreadsheet reads as a formula.
				model: spreadsheetSafe(j.model ?? ""),
				prompt: j.prompt ?? "",
				completed_at: j.completed_at ?? "",
			})),
		);
		const caption = rows[0]?.caption ?? "";
		expect(caption).toContain(TRICKY_PROMPT);
		expect(caption).toMatch(/,.*".*\n/s);
		expect(rows.at(-1)).toMatchObject({ status: "failed", error_code: "unsupported_media_type" });
	});

	it("hf: imagefolder metadata.jsonl with file names relative to the prefix's folder, succeeded jobs only", async () => {
		const res = await results("hf");
		expect(res.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
		expect(res.headers.get("content-disposition")).toBe('attachment; filename="metadata.jsonl"');
		const lines = (await bodyText(res))
			.trimEnd()
			.split("\n")
			.map((line) => HfLine.parse(JSON.parse(line)));
		const api = [...(await jobsById()).values()];
		const captionOf = (key: string) => api.find((j) => j.key === key)?.caption;
		expect(lines).toEqual([
			{ file_name: "cats/a.jpg", text: captionOf(keys[0] as string) },
			{ file_name: "cats/b.png", text: captionOf(keys[1] as string) },
			{ file_name: "dogs/c.jpg", text: captionOf(keys[2] as string) },
		]);
	});

	it("an unknown format is a 400 naming the parameter; an unknown batch is 404", async () => {
		const bad = await call("GET", `/v1/batches/${batch.id}/results?format=xlsx`);
		expect(bad.status).toBe(400);
		expect(await invalidFields(bad)).toEqual(["format"]);
		expect((await call("GET", "/v1/batches/bat_nope/results")).status).toBe(404);
	});

	it("skipped objects are exported as the earlier job that holds their caption", async () => {
		const again = await waitForBatch((await createBatch({ prefix, prompt: TRICKY_PROMPT })).id, settled);
		expect(again.counts).toMatchObject({ total: 4, skipped: 3, failed: 1 });
		const lines = (await bodyText(await results("jsonl", again.id)))
			.trimEnd()
			.split("\n")
			.map((line) => Job.parse(JSON.parse(line)));
		expect(lines.map((j) => [j.key, j.batch_id])).toEqual([
			[keys[0], batch.id],
			[keys[1], batch.id],
			[keys[2], batch.id],
			[`${prefix}notes.md`, again.id],
		]);
	});
});

describe("rowsInKeyOrder", () => {
	it("merges a batch's jobs and skips in key order across many pages, each page at most the page size", async () => {
		const base = uniqueKey("export-pages/");
		const batchRow = await unsentBatch(base);
		const now = Date.now();
		// 23 jobs and 12 skips interleaved by key, straight into D1.
		for (let i = 0; i < 35; i++) {
			const key = `${base}${String(i).padStart(3, "0")}.jpg`;
			if (i % 3 === 0) {
				const earlier = `job_EXPORTEARLY${now}${i}`;
				await env.DB.prepare(
					`INSERT INTO jobs (id, source, bucket, key, etag, status, attempts, created_at, updated_at)
					VALUES (?1, 'api', 'images', ?2, 'e', 'succeeded', 1, ?3, ?3)`,
				)
					.bind(earlier, key, now)
					.run();
				await env.DB.prepare("INSERT INTO batch_skips (batch_id, key, job_id) VALUES (?, ?, ?)")
					.bind(batchRow.id, key, earlier)
					.run();
			} else {
				await env.DB.prepare(
					`INSERT INTO jobs (id, source, batch_id, bucket, key, etag, status, attempts, created_at, updated_at)
					VALUES (?1, 'batch', ?2, 'images', ?3, 'e', 'queued', 0, ?4, ?4)`,
				)
					.bind(`job_EXPORTPAGE${now}${i}`, batchRow.id, key, now)
					.run();
			}
		}
		const pages: string[][] = [];
		for await (const page of rowsInKeyOrder(env.DB, batchRow.id, 4)) pages.push(page.map((r) => r.key));
		expect(pages.every((p) => p.length <= 4)).toBe(true);
		expect(pages.flat()).toEqual(Array.from({ length: 35 }, (_, i) => `${base}${String(i).padStart(3, "0")}.jpg`));
	});

	it("orders keys the way SQLite does (by code point), astral characters after the rest of the BMP", () => {
		const keys = ["a/\u{1F600}.jpg", "a/\uFF5E.jpg", "a/z.jpg"];
		expect([...keys].sort(byCodePoint)).toEqual(["a/z.jpg", "a/\uFF5E.jpg", "a/\u{1F600}.jpg"]);
		expect([...keys].sort()).not.toEqual([...keys].sort(byCodePoint));
	});
});

describe("hf file names", () => {
	it("are relative to the folder when the prefix does not end in `/`, and for a keys batch", async () => {
		const folder = uniqueKey("export-folder/");
		const keys = [`${folder}cat-1.jpg`, `${folder}cat-2.jpg`];
		await putObjects(keys);
		const byPrefix = await waitForBatch((await createBatch({ prefix: `${folder}cat-` })).id, settled);
		const byKeys = await waitForBatch((await createBatch({ keys, skip_captioned: false })).id, settled);
		for (const done of [byPrefix, byKeys]) {
			expect(done.counts.succeeded).toBe(2);
			const lines = (await bodyText(await results("hf", done.id)))
				.trim()
				.split("\n")
				.map((line) => HfLine.parse(JSON.parse(line)).file_name);
			expect(lines).toEqual(["cat-1.jpg", "cat-2.jpg"]);
		}
	});
});

describe("CSV exports are safe to open in a spreadsheet", () => {
	it("a cell that a spreadsheet would run as a formula gets a leading ' ; JSON Lines keep the value as it is", async () => {
		const formula = `=HYPERLINK("https://example.com","click")`;
		const csvPrefix = uniqueKey("export-formula/");
		await putObjects([`${csvPrefix}a.jpg`]);
		const made = await waitForBatch((await createBatch({ prefix: csvPrefix, prompt: formula })).id, settled);
		const [row] = parse(await bodyText(await results("csv", made.id)), { columns: true }) as Record<string, string>[];
		expect(row?.prompt).toBe(`'${formula}`);
		const [line] = (await bodyText(await results("jsonl", made.id))).trimEnd().split("\n");
		expect(Job.parse(JSON.parse(line ?? "")).prompt).toBe(formula);
	});

	it.each(["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])(
		"%j is prefixed; text that only contains them is not",
		(value) => {
			expect(spreadsheetSafe(value)).toBe(`'${value}`);
			expect(spreadsheetSafe(`a${value}`)).toBe(`a${value}`);
		},
	);
});
