/** POST /v1/jobs: a new job for an object already in the bucket, every time, through the real queue. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { fixture, uniqueKey } from "../support/fixtures";
import { jobsForKey } from "../support/queue";
import { call, errorOf, invalidFields, parsed, pollJob, uploadViaApi } from "./support";

async function createJob(json: unknown): Promise<Response> {
	return call("POST", "/v1/jobs", { json });
}

describe("POST /v1/jobs", () => {
	it("captions an uploaded object again with another prompt: a second job for the same object version", async () => {
		const key = uniqueKey("again/cat.png");
		const first = await uploadViaApi(key, await fixture("small.png"), { "X-Caption-Prompt": "First question" });
		const res = await createJob({ key, prompt: "Second question", max_tokens: 32 });
		expect(res.status).toBe(202);
		const second = await parsed(res, Job);
		expect(second.id).not.toBe(first.id);
		expect(second).toMatchObject({
			key,
			etag: first.etag,
			size: first.size,
			status: "queued",
			prompt: "Second question",
		});

		const [a, b] = await Promise.all([pollJob(first.id), pollJob(second.id)]);
		expect(a).toMatchObject({ status: "succeeded", prompt: "First question" });
		expect(b).toMatchObject({ status: "succeeded", prompt: "Second question", max_tokens: 32 });
		const rows = await jobsForKey(key);
		expect(rows.map((r) => r.source).sort()).toEqual(["api", "notification"]);
	});

	it("the same request twice makes two jobs", async () => {
		const key = uniqueKey("twice.jpg");
		await env.BUCKET.put(key, await fixture("small.jpg"));
		const one = await parsed(await createJob({ key }), Job);
		const two = await parsed(await createJob({ key }), Job);
		expect(one.id).not.toBe(two.id);
		expect((await pollJob(two.id)).status).toBe("succeeded");
		expect(await jobsForKey(key)).toHaveLength(2);
	});

	it("404 when the object is not in the bucket", async () => {
		const key = uniqueKey("missing.png");
		const res = await createJob({ key });
		expect(res.status).toBe(404);
		expect((await errorOf(res)).code).toBe("not_found");
		expect(await jobsForKey(key)).toHaveLength(0);
	});

	for (const [label, body, field] of [
		["a missing key", {}, "key"],
		["an empty key", { key: "" }, "key"],
		["max_tokens 0", { key: "a.png", max_tokens: 0 }, "max_tokens"],
		["max_tokens that is not a number", { key: "a.png", max_tokens: "many" }, "max_tokens"],
		["max_tokens true", { key: "a.png", max_tokens: true }, "max_tokens"],
		["max_tokens as a string of digits", { key: "a.png", max_tokens: "5" }, "max_tokens"],
		["max_tokens in an array", { key: "a.png", max_tokens: [7] }, "max_tokens"],
		["a blank prompt", { key: "a.png", prompt: "  " }, "prompt"],
		["a callback_url that is not http(s)", { key: "a.png", callback_url: "javascript:alert(1)" }, "callback_url"],
		["an unknown field", { key: "a.png", max_token: 5 }, "max_token"],
		["a key with a sidecar's name (never captioned)", { key: "a/notes.TXT" }, "key"],
		["a key with a JSON sidecar's name", { key: "a/record.json" }, "key"],
	] as const) {
		it(`400 naming ${field} for ${label}`, async () => {
			const res = await createJob(body);
			expect(res.status).toBe(400);
			expect(await invalidFields(res)).toEqual([field]);
		});
	}

	// The JSON bodies that take max_tokens want a number, as the OpenAPI document says; headers
	// and custom metadata, which are text, keep reading "5" as 5.
	for (const [path, body] of [
		["/v1/batches", { prefix: "a/", dry_run: true }],
		["/v1/presets", { name: "numbers", prefix: "numbers/", output: "tags" }],
	] as const) {
		it(`400 naming max_tokens for true or "5" on POST ${path}`, async () => {
			for (const maxTokens of [true, "5"]) {
				const res = await call("POST", path, { json: { ...body, max_tokens: maxTokens } });
				expect(res.status).toBe(400);
				expect(await invalidFields(res)).toEqual(["max_tokens"]);
			}
		});
	}

	it("400 naming the body for malformed JSON, 415 for a non-JSON body", async () => {
		const malformed = await call("POST", "/v1/jobs", { body: "{", headers: { "content-type": "application/json" } });
		expect(malformed.status).toBe(400);
		expect(await invalidFields(malformed)).toEqual(["body"]);
		const text = await call("POST", "/v1/jobs", { body: "key=a.png", headers: { "content-type": "text/plain" } });
		expect(text.status).toBe(415);
		expect((await errorOf(text)).code).toBe("unsupported_media_type");
	});
});
