/**
 * The output options through the API: upload headers stored as metadata and on the job, the body
 * of POST /v1/jobs, 400s for values the service cannot use, and a 100-object write-back batch that
 * makes exactly 100 jobs, 100 model calls and 100 job events while its echoes make nothing.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import type { CaptionRequest } from "../../shared/queue/caption-jobs";
import { eventJobId } from "../../shared/webhooks/job-event";
import { deliverPage, getBatch, jobsOfBatch, putObjects, unsentBatch } from "../batches/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { LLAVA, resetModels } from "../support/models";
import { counter, runConsumer } from "../support/queue";
import { recordingQueue } from "../support/recording";
import { call, errorOf, invalidFields, parsed, uploadViaApi } from "./support";

beforeEach(resetModels);

describe("output options on the API", () => {
	it("upload headers become the object's metadata and the job's options, and the job runs with them", async () => {
		const key = uniqueKey("upload.png");
		const job = await uploadViaApi(key, await fixture("small.png"), {
			"X-Caption-Output": "tags",
			"X-Caption-Language": "DE",
			"X-Caption-Write-Back": "sidecar:skip",
		});
		expect(job).toMatchObject({
			output: "tags",
			language: "de",
			result: null,
			write_back: { target: "sidecar", status: "pending", error: null },
		});
		const head = await env.BUCKET.head(key);
		expect(head?.customMetadata).toEqual({ output: "tags", language: "de", "write-back": "sidecar:skip" });
	});

	it("a JSON Schema output header is stored as its JSON text", async () => {
		const key = uniqueKey("schema.png");
		const output = JSON.stringify({ json_schema: { type: "object", properties: { a: { type: "string" } } } });
		const job = await uploadViaApi(key, await fixture("small.png"), { "X-Caption-Output": output });
		expect(job.output).toBe("json_schema");
		expect((await env.BUCKET.head(key))?.customMetadata?.output).toBe(output);
	});

	it("unusable values are 400 invalid_request naming the field", async () => {
		const key = uniqueKey("bad.png");
		const bad = await call("PUT", `/v1/images/${key}`, {
			body: await fixture("small.png"),
			headers: { "X-Caption-Output": "sonnet", "X-Caption-Language": "??", "X-Caption-Write-Back": "floppy" },
		});
		expect(bad.status).toBe(400);
		expect((await invalidFields(bad)).sort()).toEqual([
			"X-Caption-Language",
			"X-Caption-Output",
			"X-Caption-Write-Back",
		]);
		await env.BUCKET.put(key, await fixture("small.png"));
		const big = { json_schema: { type: "object", description: "x".repeat(17 * 1024) } };
		const tooBig = await call("POST", "/v1/jobs", { json: { key, output: big } });
		expect(tooBig.status).toBe(400);
		expect(await invalidFields(tooBig)).toEqual(["output.json_schema"]);
		const unusable = await call("POST", "/v1/jobs", { json: { key, output: { json_schema: { type: "thing" } } } });
		expect(unusable.status).toBe(400);
		expect((await errorOf(unusable)).message).toContain("not a JSON type");
	});

	it("a JSON Schema the validator would throw on is refused up front: body, header and preset name the field", async () => {
		const key = uniqueKey("regex.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		const unusable: [Record<string, unknown>, string][] = [
			[
				{ type: "object", properties: { name: { type: "string", pattern: "(" } }, required: ["name"] },
				"/properties/name/pattern",
			],
			[{ type: "object", patternProperties: { "[": { type: "string" } } }, "/patternProperties"],
			[{ type: "object", properties: { name: { type: "string", format: "valueOf" } } }, "/properties/name/format"],
			[{ type: "object", properties: { name: { $ref: "#/$defs/missing" } } }, "#/$defs/missing"],
			[{ type: "object", propertyNames: null }, "/propertyNames"],
		];
		for (const [json_schema, named] of unusable) {
			const body = await call("POST", "/v1/jobs", { json: { key, output: { json_schema } } });
			expect(body.status).toBe(400);
			const error = await errorOf(body);
			expect(error.details).toEqual([expect.objectContaining({ field: "output" })]);
			expect(error.message).toContain(named);
		}
		const pattern = { json_schema: unusable[0]?.[0] };
		const header = await call("PUT", `/v1/images/${uniqueKey("regex.png")}`, {
			body: await fixture("small.png"),
			headers: { "X-Caption-Output": JSON.stringify(pattern) },
		});
		expect(header.status).toBe(400);
		const headerError = await errorOf(header);
		expect(headerError.details).toEqual([expect.objectContaining({ field: "X-Caption-Output" })]);
		expect(headerError.message).toContain("Invalid regular expression");
		const preset = await call("POST", "/v1/presets", {
			json: { name: `regex-${crypto.randomUUID().slice(0, 8)}`, prefix: uniqueKey("regex/"), output: pattern },
		});
		expect(preset.status).toBe(400);
		expect(await invalidFields(preset)).toEqual(["output"]);
		// A usable pattern, format and $ref still pass.
		const usable = {
			type: "object",
			$defs: { sku: { type: "string", pattern: "^[A-Z]{3}-\\d+$" } },
			properties: { sku: { $ref: "#/$defs/sku" }, at: { type: "string", format: "date" } },
			patternProperties: { "^x-": { type: "string" } },
		};
		expect((await call("POST", "/v1/jobs", { json: { key, output: { json_schema: usable } } })).status).toBe(202);
	});

	it("draft-07 tuple items are taken (body, header, preset); under a 2020-12 $schema they are a clear 400", async () => {
		const tuple = {
			type: "array",
			items: [{ type: "integer" }, { type: "string" }],
			additionalItems: false,
		};
		const key = uniqueKey("tuple.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		for (const json_schema of [{ $schema: "http://json-schema.org/draft-07/schema#", ...tuple }, tuple]) {
			const output = { json_schema };
			expect((await call("POST", "/v1/jobs", { json: { key, output } })).status).toBe(202);
			const job = await uploadViaApi(uniqueKey("tuple.png"), await fixture("small.png"), {
				"X-Caption-Output": JSON.stringify(output),
			});
			expect(job.output).toBe("json_schema");
			const preset = await call("POST", "/v1/presets", {
				json: { name: `tuple-${crypto.randomUUID().slice(0, 8)}`, prefix: uniqueKey("tuple/"), output },
			});
			expect(preset.status).toBe(201);
		}
		const newer = { $schema: "https://json-schema.org/draft/2020-12/schema", ...tuple };
		const refused = await call("POST", "/v1/jobs", { json: { key, output: { json_schema: newer } } });
		expect(refused.status).toBe(400);
		expect((await errorOf(refused)).message).toContain("prefixItems");
	});

	it("a language must start with an ISO 639 code: xx-yy-zz-qq, xx, zxx are 400 in body, header and preset", async () => {
		const key = uniqueKey("lang.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		for (const language of ["xx-yy-zz-qq", "xx", "zxx", "englisch"]) {
			const body = await call("POST", "/v1/jobs", { json: { key, language } });
			expect(body.status).toBe(400);
			const error = await errorOf(body);
			expect(error.details).toEqual([expect.objectContaining({ field: "language" })]);
			expect(error.message).toContain("pt-BR");
			const header = await call("PUT", `/v1/images/${uniqueKey("lang.png")}`, {
				body: await fixture("small.png"),
				headers: { "X-Caption-Language": language },
			});
			expect(header.status).toBe(400);
			expect(await invalidFields(header)).toEqual(["X-Caption-Language"]);
			const preset = await call("POST", "/v1/presets", {
				json: {
					name: `lang-${crypto.randomUUID().slice(0, 8)}`,
					prefix: uniqueKey("lang/"),
					output: "title",
					language,
				},
			});
			expect(preset.status).toBe(400);
			expect(await invalidFields(preset)).toEqual(["language"]);
		}
		for (const [language, canonical] of [
			["en", "en"],
			["en-GB", "en-GB"],
			["pt-br", "pt-BR"],
			["zh-Hant-TW", "zh-Hant-TW"],
			["fil", "fil"],
			// A language's English name is its code (values stored before the rule stay usable).
			["English", "en"],
			["german", "de"],
			// Names whose first two-letter code is an old one: the canonical code.
			["Romanian", "ro"],
			["Filipino", "fil"],
		]) {
			const res = await call("POST", "/v1/jobs", { json: { key, language } });
			expect(res.status).toBe(202);
			expect((await parsed(res, Job)).language).toBe(canonical);
		}
	});

	it("POST /v1/jobs takes output, language and write_back", async () => {
		const key = uniqueKey("again.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		const res = await call("POST", "/v1/jobs", {
			json: { key, output: "title", language: "pt-BR", write_back: { target: "metadata", mode: "skip" } },
		});
		expect(res.status).toBe(202);
		const job = await parsed(res, Job);
		expect(job).toMatchObject({
			output: "title",
			language: "pt-BR",
			write_back: { target: "metadata", status: "pending" },
		});
		await runConsumer([{ kind: "caption-job", job_id: job.id }], { env: { CAPTION_JOBS: recordingQueue().queue } });
		const done = await parsed(await call("GET", `/v1/jobs/${job.id}`), Job);
		expect(done).toMatchObject({
			status: "succeeded",
			write_back: { target: "metadata", status: "written", error: null },
		});
		expect((await env.BUCKET.head(key))?.customMetadata).toEqual({ caption: done.caption, "caption-job": job.id });
	});
});

describe("a 100-object write-back batch", () => {
	it("makes exactly 100 jobs, 100 model calls and 100 job events; its 100 echoes make nothing more", async () => {
		const prefix = uniqueKey("wb-batch/");
		const keys = Array.from({ length: 100 }, (_, i) => `${prefix}${String(i).padStart(3, "0")}.png`);
		await putObjects(keys, "small.png");
		const batch = await unsentBatch(prefix, {
			outputs: { output: "tags", language: null, writeBack: "sidecar:overwrite" },
		});
		expect(batch).toMatchObject({ output: "tags", write_back: "sidecar" });
		// One listing page of all 100 (the test configuration lists 3 a page).
		await deliverPage(batch.id, 0, { holdCaptions: true, env: { BATCH_PAGE_SIZE: "100" } });
		const jobs = await jobsOfBatch(batch.id);
		expect(jobs).toHaveLength(100);

		const { queue, sent } = recordingQueue();
		const messages: CaptionRequest[] = jobs.map((j) => ({ kind: "caption-job", job_id: j.id }));
		for (let i = 0; i < messages.length; i += 25) {
			await runConsumer(messages.slice(i, i + 25), { env: { CAPTION_JOBS: queue, MODEL_CHAIN: LLAVA } });
		}
		// Its own model (uploads of other tests may be captioned meanwhile through the real queue).
		expect(emulator.callsTo(LLAVA)).toBe(100);
		expect(sent).toHaveLength(100);
		const echoes = await counter("write_back_echoes");
		for (let i = 0; i < sent.length; i += 25) {
			await runConsumer(sent.slice(i, i + 25), { env: { MODEL_CHAIN: LLAVA } });
		}
		expect(await counter("write_back_echoes")).toBe(echoes + 100);
		expect(emulator.callsTo(LLAVA)).toBe(100);
		const after = await jobsOfBatch(batch.id);
		expect(after).toHaveLength(100);
		expect(after.every((j) => j.status === "succeeded" && j.write_back_status === "written")).toBe(true);
		const made = await env.DB.prepare("SELECT count(*) AS n FROM jobs WHERE key >= ?1 AND key < ?1 || x'ff'")
			.bind(prefix)
			.first("n");
		expect(made).toBe(100);
		const events = await env.DB.prepare(
			`SELECT count(*) AS n FROM webhook_events WHERE ${eventJobId()} IN (SELECT id FROM jobs WHERE batch_id = ?)`,
		)
			.bind(batch.id)
			.first("n");
		expect(events).toBe(100);
		for (const key of keys.slice(0, 3)) {
			const sidecar = await env.BUCKET.get(key.replace(/\.png$/, ".txt"));
			expect(await sidecar?.text()).toMatch(/^png, (square|landscape|portrait), /);
		}
		expect((await getBatch(batch.id)).counts).toMatchObject({ succeeded: 100, total: 100 });
	});
});
