/**
 * Captions as a managed asset: versions made by jobs that succeed through the consumer, a person's
 * version, the current-caption rule (a human caption stays until `overwrite_human`), the list in
 * key order, the export in its three formats parsed back, and scope on every route.
 */
import { env } from "cloudflare:workers";
import { parse as parseCsv } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Caption, CaptionWithHistory } from "../../shared/captions/schema";
import { CAPTION_CSV_COLUMNS } from "../../workers/status/captions/export";
import { listCaptions } from "../../workers/status/captions/store";
import { fixture, uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { LLAVA, MOONDREAM } from "../support/models";
import { jobsForKey, runConsumer } from "../support/queue";
import { call, createKey, errorOf, pageOf, parsed } from "./support";

const path = (key: string) => `/v1/captions/${encodeURIComponent(key)}`;

/** Puts the object in the bucket (no notification) and returns its ETag. */
async function put(key: string): Promise<string> {
	const object = await env.BUCKET.put(key, await fixture("small.jpg"));
	if (!object) throw new Error(`the put of ${key} stored nothing`);
	return object.etag;
}

/** One API job of the object, run by the real consumer with `model` as its whole chain. */
async function captionWith(key: string, etag: string, model: string, batchId: string | null = null) {
	const job = await insertJob({ key, etag, size: 100, batch_id: batchId, source: batchId ? "batch" : "api" });
	await runConsumer([{ kind: "caption-job", job_id: job.id }], { env: { MODEL_CHAIN: model } });
	const done = (await jobsForKey(key)).find((j) => j.id === job.id);
	expect(done?.status, done?.error_message ?? "").toBe("succeeded");
	return job.id;
}

async function getCaption(key: string, token?: string): Promise<CaptionWithHistory> {
	const res = await call("GET", path(key), token ? { token } : {});
	expect(res.status).toBe(200);
	return parsed(res, CaptionWithHistory);
}

async function putCaption(key: string, text: string, token?: string): Promise<Response> {
	return call("PUT", path(key), { json: { text }, ...(token ? { token } : {}) });
}

describe("caption versions", () => {
	it("two AI jobs and a human edit: the human version is current, history newest first", async () => {
		const key = uniqueKey("versions/cat.jpg");
		const etag = await put(key);
		const first = await captionWith(key, etag, MOONDREAM);
		const afterFirst = await getCaption(key);
		expect(afterFirst).toMatchObject({ key, etag, source: "ai", job_id: first, model: MOONDREAM, versions: 1 });
		expect(afterFirst.text).toContain(MOONDREAM);

		const second = await captionWith(key, etag, LLAVA);
		expect(await getCaption(key)).toMatchObject({ source: "ai", job_id: second, model: LLAVA, versions: 2 });

		const edited = await putCaption(key, "A grey cat on a red sofa.");
		expect(edited.status).toBe(200);
		expect(await parsed(edited, Caption)).toMatchObject({
			key,
			etag,
			text: "A grey cat on a red sofa.",
			source: "human",
			job_id: null,
			model: null,
			versions: 3,
		});

		const caption = await getCaption(key);
		expect(caption).toMatchObject({ source: "human", text: "A grey cat on a red sofa.", versions: 3 });
		expect(caption.history.map((v) => [v.version, v.source, v.job_id, v.model])).toEqual([
			[3, "human", null, null],
			[2, "ai", second, LLAVA],
			[1, "ai", first, MOONDREAM],
		]);
	});

	it("a later AI job adds a version but leaves a human caption current; one asked to overwrite_human replaces it", async () => {
		const key = uniqueKey("keep-human/dog.jpg");
		const etag = await put(key);
		await captionWith(key, etag, MOONDREAM);
		expect((await putCaption(key, "A dog.")).status).toBe(200);
		const plain = await captionWith(key, etag, LLAVA);
		const kept = await getCaption(key);
		expect(kept).toMatchObject({ source: "human", text: "A dog.", versions: 3 });
		expect(kept.history[0]).toMatchObject({ version: 3, source: "ai", job_id: plain });

		const batch = `bat_${crypto.randomUUID()}`;
		await env.DB.prepare(
			`INSERT INTO batches (id, status, bucket, prefix, key_prefix, metadata, skip_captioned, overwrite_human, created_at, updated_at)
			VALUES (?1, 'running', 'images', ?2, ?2, '{}', 0, 1, ?3, ?3)`,
		)
			.bind(batch, key, Date.now())
			.run();
		const overwriting = await captionWith(key, etag, LLAVA, batch);
		expect(await getCaption(key)).toMatchObject({ source: "ai", job_id: overwriting, model: LLAVA, versions: 4 });
	});

	it("a failed job adds no version", async () => {
		const key = uniqueKey("failed/cat.jpg");
		const etag = await put(key);
		await captionWith(key, etag, MOONDREAM);
		await env.DB.prepare("UPDATE jobs SET status = 'processing' WHERE key = ?").bind(key).run();
		await env.DB.prepare("UPDATE jobs SET status = 'failed', caption = NULL WHERE key = ?").bind(key).run();
		expect((await getCaption(key)).versions).toBe(1);
	});

	it("404 for an object without a caption, and PUT 404 for an object not in the bucket", async () => {
		const key = uniqueKey("none/cat.jpg");
		expect((await call("GET", path(key))).status).toBe(404);
		const res = await putCaption(key, "nothing there");
		expect(res.status).toBe(404);
		expect((await errorOf(res)).code).toBe("not_found");
	});

	it("PUT refuses an empty text with a 400 naming the field", async () => {
		const key = uniqueKey("empty/cat.jpg");
		await put(key);
		const res = await putCaption(key, "   ");
		expect(res.status).toBe(400);
		expect((await errorOf(res)).details).toEqual([expect.objectContaining({ field: "text", in: "body" })]);
	});

	it("the key is one path segment with %2F, or its slashes as they are (as for images)", async () => {
		const key = uniqueKey("deep/a/b/c.jpg");
		await put(key);
		expect((await putCaption(key, "Slashes in one segment.")).status).toBe(200);
		expect((await getCaption(key)).text).toBe("Slashes in one segment.");
		const raw = await call("PUT", `/v1/captions/${key}`, { json: { text: "Slashes as they are." } });
		expect(raw.status).toBe(200);
		expect((await parsed(await call("GET", `/v1/captions/${key}`), Caption)).text).toBe("Slashes as they are.");
		expect((await call("GET", `/v1/captions/${uniqueKey("deep/none.jpg")}`)).status).toBe(404);
	});
});

describe("GET /v1/captions", () => {
	it("lists the current captions of a prefix in key order, page by page", async () => {
		const prefix = uniqueKey("list/");
		const keys = ["b.jpg", "a.jpg", "c/d.jpg", "e.jpg", "f.jpg"].map((k) => `${prefix}${k}`);
		for (const key of keys) {
			await put(key);
			expect((await putCaption(key, `caption of ${key}`)).status).toBe(200);
		}
		await put(`${prefix}no-caption.jpg`);
		const seen: z.infer<typeof Caption>[] = [];
		let cursor: string | null = null;
		let pages = 0;
		do {
			const query: string = `prefix=${encodeURIComponent(prefix)}&limit=2${cursor ? `&cursor=${cursor}` : ""}`;
			const res = await call("GET", `/v1/captions?${query}`);
			expect(res.status).toBe(200);
			const page = await parsed(res, pageOf(Caption));
			expect(page.data.length).toBeLessThanOrEqual(2);
			seen.push(...page.data);
			cursor = page.next_cursor;
			pages++;
		} while (cursor !== null);
		expect(pages).toBe(3);
		expect(seen.map((c) => c.key)).toEqual([...keys].sort());
		expect(seen.every((c) => c.text === `caption of ${c.key}` && c.source === "human")).toBe(true);
	});

	it("a prefix's pages read their own captions only, however many keys sort before the prefix", async () => {
		const base = uniqueKey("bounded/");
		// 500 captions sort before the prefix listed (as do every other test's keys), 25 are under it.
		const before = Array.from({ length: 500 }, (_, i) => `${base}a/${String(i).padStart(3, "0")}.jpg`);
		const under = Array.from({ length: 25 }, (_, i) => `${base}b/${String(i).padStart(2, "0")}.jpg`);
		await env.DB.batch(
			[...before, ...under].flatMap((key) => [
				env.DB.prepare(
					"INSERT INTO captions (bucket, key, current, versions, updated_at) VALUES ('images', ?, 1, 1, 0)",
				).bind(key),
				env.DB.prepare(
					`INSERT INTO caption_versions (bucket, key, version, text, source, etag, created_at)
					VALUES ('images', ?, 1, 'seeded', 'human', 'etag', 0)`,
				).bind(key),
			]),
		);
		const limit = 10;
		const listed: string[] = [];
		let after: string | null = null;
		for (let page = 0; page < 5; page++) {
			const result = await listCaptions(env.DB, "images", `${base}b/`, after, limit);
			listed.push(...result.rows.map((r) => r.key));
			// A page joins at most limit + 1 captions with their current versions.
			expect(result.rowsRead).toBeLessThanOrEqual(2 * (limit + 1));
			after = result.nextAfter;
			if (after === null) break;
		}
		expect(listed).toEqual(under);
	});

	it("refuses a cursor it did not issue", async () => {
		const res = await call("GET", "/v1/captions?cursor=not-a-cursor!");
		expect(res.status).toBe(400);
	});
});

describe("GET /v1/exports/captions", () => {
	it("streams jsonl, csv and hf that parse back to the current captions", async () => {
		const prefix = uniqueKey("export/");
		const keys = [`${prefix}b.jpg`, `${prefix}a.jpg`, `${prefix}sub/=c.jpg`];
		for (const key of keys) {
			await put(key);
			expect((await putCaption(key, `text, "quoted" ${key}`)).status).toBe(200);
		}
		const sorted = [...keys].sort();
		const get = (format: string) =>
			call("GET", `/v1/exports/captions?prefix=${encodeURIComponent(prefix)}&format=${format}`);

		const jsonl = await get("jsonl");
		expect(jsonl.headers.get("content-type")).toContain("application/x-ndjson");
		const lines = (await jsonl.text())
			.trim()
			.split("\n")
			.map((l) => Caption.parse(JSON.parse(l)));
		expect(lines.map((c) => c.key)).toEqual(sorted);

		const csv = await get("csv");
		expect(csv.headers.get("content-type")).toContain("text/csv");
		const rows = z
			.array(z.record(z.string(), z.string()))
			.parse(parseCsv(await csv.text(), { columns: true, record_delimiter: "\r\n" }));
		expect(Object.keys(rows[0] ?? {})).toEqual([...CAPTION_CSV_COLUMNS]);
		expect(rows.map((r) => [r.key, r.text, r.source])).toEqual(sorted.map((k) => [k, `text, "quoted" ${k}`, "human"]));

		const hf = await get("hf");
		const records = (await hf.text())
			.trim()
			.split("\n")
			.map((l) => z.object({ file_name: z.string(), text: z.string() }).parse(JSON.parse(l)));
		expect(records.map((r) => r.file_name)).toEqual(sorted.map((k) => k.slice(prefix.length)));
	});

	it("an empty prefix's csv is the header row alone", async () => {
		const res = await call("GET", `/v1/exports/captions?prefix=${encodeURIComponent(uniqueKey("empty/"))}&format=csv`);
		expect(res.status).toBe(200);
		expect(await res.text()).toBe(`${CAPTION_CSV_COLUMNS.join(",")}\r\n`);
	});
});

describe("scope", () => {
	it("a scoped key reads, writes and exports inside its prefix only; outside is 404", async () => {
		const inside = uniqueKey("scope-in/");
		const outside = uniqueKey("scope-out/");
		const key = await createKey(inside);
		const mine = `${inside}cat.jpg`;
		const theirs = `${outside}cat.jpg`;
		for (const k of [mine, theirs]) {
			await put(k);
			expect((await putCaption(k, `admin wrote ${k}`)).status).toBe(200);
		}
		expect((await putCaption(mine, "mine", key.token)).status).toBe(200);
		expect((await getCaption(mine, key.token)).text).toBe("mine");

		expect((await putCaption(theirs, "not mine", key.token)).status).toBe(404);
		expect((await call("GET", path(theirs), { token: key.token })).status).toBe(404);
		expect((await getCaption(theirs)).text).toBe(`admin wrote ${theirs}`);

		const listed = await parsed(await call("GET", "/v1/captions?limit=100", { token: key.token }), pageOf(Caption));
		expect(listed.data.map((c) => c.key)).toEqual([mine]);
		const elsewhere = await call("GET", `/v1/captions?prefix=${encodeURIComponent(outside)}`, { token: key.token });
		expect((await parsed(elsewhere, pageOf(Caption))).data).toEqual([]);

		const exported = await call("GET", "/v1/exports/captions", { token: key.token });
		expect(exported.status).toBe(200);
		expect(
			(await exported.text())
				.trim()
				.split("\n")
				.map((l) => Caption.parse(JSON.parse(l)).key),
		).toEqual([mine]);
		const out = await call("GET", `/v1/exports/captions?prefix=${encodeURIComponent(outside)}`, { token: key.token });
		expect(out.status).toBe(404);
	});
});

describe("retention", () => {
	it("a version outlives its job: deleting the job row keeps the caption and its job_id", async () => {
		const key = uniqueKey("retained/cat.jpg");
		const etag = await put(key);
		const jobId = await captionWith(key, etag, MOONDREAM);
		await env.DB.prepare("DELETE FROM jobs WHERE id = ?").bind(jobId).run();
		expect(await jobsForKey(key)).toEqual([]);
		expect(await getCaption(key)).toMatchObject({ job_id: jobId, source: "ai", versions: 1 });
	});

	it("an AI version is held by its job while the job exists (no row of its own), and reads the same once the job is gone", async () => {
		const key = uniqueKey("once/cat.jpg");
		const etag = await put(key);
		const first = await captionWith(key, etag, MOONDREAM);
		const second = await captionWith(key, etag, LLAVA);
		const before = await getCaption(key);
		expect(before).toMatchObject({ job_id: second, model: LLAVA, etag, versions: 2 });
		expect(before.history.map((v) => v.job_id)).toEqual([second, first]);
		const rows = async () =>
			z
				.array(z.object({ version: z.number(), text: z.string(), job_id: z.string().nullable() }))
				.parse(
					(
						await env.DB.prepare("SELECT version, text, job_id FROM caption_versions WHERE key = ? ORDER BY version")
							.bind(key)
							.all()
					).results,
				);
		const held = async (id: string) =>
			env.DB.prepare("SELECT caption_version FROM jobs WHERE id = ?").bind(id).first("caption_version");
		expect(await rows()).toEqual([]);
		expect([await held(first), await held(second)]).toEqual([1, 2]);

		// Retention deletes the superseded job; the object's deletion later takes the latest one too.
		const [v2, v1] = before.history;
		await env.DB.prepare("DELETE FROM jobs WHERE id = ?").bind(first).run();
		expect(await getCaption(key)).toEqual(before);
		expect(await rows()).toEqual([{ version: 1, text: v1?.text, job_id: first }]);
		await env.DB.prepare("DELETE FROM jobs WHERE id = ?").bind(second).run();
		expect(await getCaption(key)).toEqual(before);
		expect(await rows()).toEqual([
			{ version: 1, text: v1?.text, job_id: first },
			{ version: 2, text: v2?.text, job_id: second },
		]);
	});
});
