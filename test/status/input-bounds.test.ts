/**
 * Bounded inputs: a callback URL is at most 2,048 characters wherever it comes from (POST /v1/jobs,
 * POST /v1/batches, the upload's X-Callback-Url header, an object's `callback-url` metadata), and a
 * keys batch's body stays under MAX_JSON_BYTES however many keys it names.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_CALLBACK_URL_LENGTH } from "../../shared/jobs/options";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { jobsForKey, onlyJob, runConsumer } from "../support/queue";
import { call, invalidFields } from "./support";

const urlOf = (length: number) => {
	const base = "https://hooks.example.com/";
	return base + "a".repeat(length - base.length);
};

describe("JSON bodies are UTF-8", () => {
	it("a caption, a job and a key whose body is not UTF-8: 400 naming the body, nothing written", async () => {
		const key = uniqueKey("utf8/a.jpg");
		await upload(key, await fixture("small.jpg"));
		const notUtf8 = (json: string) => {
			const [head = "", tail = ""] = json.split("\u0000");
			const bytes = new Uint8Array([
				...new TextEncoder().encode(head),
				0xff,
				0xfe,
				0xc3,
				...new TextEncoder().encode(tail),
			]);
			return { body: bytes, headers: { "content-type": "application/json" } };
		};
		for (const [method, path, json] of [
			["PUT", `/v1/captions/${encodeURIComponent(key)}`, '{"text":"\u0000"}'],
			["POST", "/v1/jobs", `{"key":"${key}","prompt":"\u0000"}`],
			["POST", "/v1/keys", '{"name":"\u0000"}'],
		] as const) {
			const res = await call(method, path, notUtf8(json));
			expect(res.status, path).toBe(400);
			expect(await invalidFields(res)).toEqual(["body"]);
		}
		expect(await jobsForKey(key)).toEqual([]);
		expect((await call("GET", `/v1/captions/${encodeURIComponent(key)}`)).status).toBe(404);
		// The same bodies in UTF-8 are taken.
		const caption = await call("PUT", `/v1/captions/${encodeURIComponent(key)}`, { json: { text: "Ünïcödé ✓" } });
		expect(caption.status).toBe(200);
	});
});

describe("integers sent as text are decimal digits", () => {
	it("limit, width and X-Caption-Max-Tokens: 0x10, 1e2, +3 and ' 3' are 400 naming the parameter; 3 is taken", async () => {
		for (const bad of ["0x3", "3e0", "%2B3", "%203", "0b11", "3.0"]) {
			for (const path of ["/v1/jobs", "/v1/batches", "/v1/captions"]) {
				const res = await call("GET", `${path}?limit=${bad}`);
				expect(res.status, `${path}?limit=${bad}`).toBe(400);
				expect(await invalidFields(res)).toEqual(["limit"]);
			}
		}
		expect((await call("GET", "/v1/jobs?limit=3")).status).toBe(200);
		const key = uniqueKey("decimal/a.png");
		await upload(key, await fixture("small.png"));
		const width = await call("GET", `/v1/images/${encodeURIComponent(key)}?width=1e2`);
		expect(width.status).toBe(400);
		expect(await invalidFields(width)).toEqual(["width"]);
		const header = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, {
			body: await fixture("small.png"),
			headers: { "X-Caption-Max-Tokens": "0x10" },
		});
		expect(header.status).toBe(400);
		expect(await invalidFields(header)).toEqual(["X-Caption-Max-Tokens"]);
	});
});

describe("query values are valid percent-encoding", () => {
	it("?key=%C3, ?prefix=%ZZ, ?batch_id=%E2%82 are 400 naming the parameter, as in a path; %25 is a literal %", async () => {
		for (const [path, field] of [
			["/v1/jobs?key=%C3", "key"],
			["/v1/jobs?limit=5&prefix=a%ZZ", "prefix"],
			["/v1/jobs?batch_id=%E2%82", "batch_id"],
			["/v1/captions?prefix=%C3", "prefix"],
			["/v1/events?prefix=%ZZ", "prefix"],
		] as const) {
			const res = await call("GET", path);
			expect(res.status, path).toBe(400);
			expect(await invalidFields(res), path).toEqual([field]);
		}
		// A literal %, a parameter the operation does not read, and + for a space are taken.
		const key = uniqueKey("percent/100%C3.png");
		const put = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, { body: await fixture("small.png") });
		expect(put.status).toBe(202);
		const found = await call("GET", `/v1/jobs?key=${encodeURIComponent(key)}&unread=%ZZ`);
		expect(found.status).toBe(200);
		expect(((await found.json()) as { data: { key: string }[] }).data.map((j) => j.key)).toEqual([key]);
		expect((await call("GET", "/v1/models?x=%C3")).status).toBe(200);
		expect((await call("GET", "/v1/jobs?prefix=a+b/")).status).toBe(200);
	});
});

describe("callback_url is at most 2,048 characters everywhere", () => {
	it("POST /v1/jobs: 400 naming callback_url one character over; exactly 2,048 is taken", async () => {
		const key = uniqueKey("bounds-job.jpg");
		await env.BUCKET.put(key, await fixture("small.jpg"));
		const over = await call("POST", "/v1/jobs", { json: { key, callback_url: urlOf(MAX_CALLBACK_URL_LENGTH + 1) } });
		expect(over.status).toBe(400);
		expect(await invalidFields(over)).toEqual(["callback_url"]);
		expect(await jobsForKey(key)).toHaveLength(0);
		const exact = await call("POST", "/v1/jobs", { json: { key, callback_url: urlOf(MAX_CALLBACK_URL_LENGTH) } });
		expect(exact.status).toBe(202);
	});

	it("POST /v1/batches and the upload's X-Callback-Url: 400 naming the field", async () => {
		const batch = await call("POST", "/v1/batches", {
			json: { prefix: uniqueKey(""), callback_url: urlOf(MAX_CALLBACK_URL_LENGTH + 1) },
		});
		expect(batch.status).toBe(400);
		expect(await invalidFields(batch)).toEqual(["callback_url"]);
		const key = uniqueKey("bounds-upload.jpg");
		const uploaded = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, {
			body: await fixture("small.jpg"),
			headers: { "X-Callback-Url": urlOf(MAX_CALLBACK_URL_LENGTH + 1) },
		});
		expect(uploaded.status).toBe(400);
		expect(await invalidFields(uploaded)).toEqual(["X-Callback-Url"]);
		expect(await env.BUCKET.head(key)).toBeNull();
	});

	it("an object written straight into the bucket with a longer callback-url fails its job with invalid_options", async () => {
		const key = uniqueKey("bounds-metadata.jpg");
		await runConsumer([
			await upload(key, await fixture("small.jpg"), { "callback-url": urlOf(MAX_CALLBACK_URL_LENGTH + 1) }),
		]);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "invalid_options" });
	});
});

describe("a keys batch stays under MAX_JSON_BYTES", () => {
	it("a body naming more keys than fit is a 413, and makes no batch", async () => {
		const prefix = uniqueKey("");
		const keys = Array.from({ length: 80_000 }, (_, i) => `${prefix}object-${i}.jpg`);
		const body = JSON.stringify({ keys });
		expect(body.length).toBeGreaterThan(2 * 1024 * 1024);
		const res = await call("POST", "/v1/batches", { body, headers: { "content-type": "application/json" } });
		expect(res.status).toBe(413);
	});
});
