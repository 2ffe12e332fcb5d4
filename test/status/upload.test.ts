/** PUT /v1/images/{key}: the stored object, the queued job, size and type checks, header validation. */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import status from "../../workers/status/index";
import { fixture, uniqueKey } from "../support/fixtures";
import { jobsForKey } from "../support/queue";
import { ADMIN, call, errorOf, invalidFields, parsed, pollJob, uploadViaApi } from "./support";

/** The real status Worker with some settings changed, the way another deployment would run it. */
function withVars(vars: Partial<Record<"MAX_UPLOAD_BYTES" | "DEPLOY_MODE", string>>, request: Request) {
	return status.fetch(request, { ...env, ...vars }, createExecutionContext());
}

const put = (key: string, body: BodyInit, headers: Record<string, string> = {}) =>
	new Request(`https://status.test/v1/images/${key}`, {
		method: "PUT",
		body,
		headers: { authorization: `Bearer ${ADMIN}`, ...headers },
	});

/** A body sent in these chunks, with no Content-Length (as a client streaming an upload sends it). */
function chunked(parts: Uint8Array[]): ReadableStream<Uint8Array> {
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			const next = parts.shift();
			if (next) controller.enqueue(next);
			else controller.close();
		},
	});
}

describe("PUT /v1/images/{key}", () => {
	it("stores the image with its caption headers as custom metadata and answers 202 with the queued job", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("albums/2026/cat.png");
		const res = await call("PUT", `/v1/images/${key}`, {
			body: png,
			// A lying Content-Type: the type comes from the bytes.
			headers: {
				"content-type": "text/plain",
				"X-Caption-Prompt": "What colour is it?",
				"X-Caption-Max-Tokens": "64",
				"X-Callback-Url": "https://example.com/hook",
			},
		});
		expect(res.status).toBe(202);
		const job = await parsed(res, Job);
		const object = await env.BUCKET.head(key);
		expect(object).not.toBeNull();
		expect(object?.customMetadata).toEqual({
			prompt: "What colour is it?",
			"max-tokens": "64",
			"callback-url": "https://example.com/hook",
		});
		expect(object?.httpMetadata?.contentType).toBe("image/png");
		expect(job).toMatchObject({
			status: "queued",
			bucket: "images",
			key,
			etag: object?.etag,
			size: png.byteLength,
			content_type: "image/png",
			prompt: "What colour is it?",
			max_tokens: 64,
		});
		const rows = await jobsForKey(key);
		expect(rows.map((r) => [r.id, r.source])).toEqual([[job.id, "notification"]]);
	});

	it("in local mode enqueues the R2 notification: the consumer captions the same job, once", async () => {
		const key = uniqueKey("local/dog.jpg");
		const job = await uploadViaApi(key, await fixture("small.jpg"), { "X-Caption-Prompt": "Describe the dog" });
		const done = await pollJob(job.id);
		expect(done.status).toBe("succeeded");
		expect(done.caption).toMatch(/emulat/i);
		expect(done.prompt).toBe("Describe the dog");
		// The notification landed on the upload's row instead of making a second job.
		expect((await jobsForKey(key)).map((r) => r.id)).toEqual([job.id]);
	});

	it("in production mode leaves the notification to the bucket's rule", async () => {
		const png = await fixture("small.png");
		const prodKey = uniqueKey("prod.png");
		const prod = await withVars({ DEPLOY_MODE: "production" }, put(prodKey, png));
		expect(prod.status).toBe(202);
		const prodJob = await parsed(prod, Job);
		// A local-mode upload made afterwards goes through the same queue and finishes...
		const localJob = await uploadViaApi(uniqueKey("after-prod.png"), png);
		expect((await pollJob(localJob.id)).status).toBe("succeeded");
		// ...while the production-mode job was never sent.
		const still = await parsed(await call("GET", `/v1/jobs/${prodJob.id}`), Job);
		expect(still.status).toBe("queued");
	});

	it("uploading the same bytes again returns the object version's existing job", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("twice.png");
		const first = await uploadViaApi(key, png);
		const second = await uploadViaApi(key, png);
		expect(second.id).toBe(first.id);
		expect(await jobsForKey(key)).toHaveLength(1);
	});

	it("accepts a key sent percent-encoded (%2F for /, as generated clients send it) and stores the decoded key", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("albums/2026/100% sure cat.png");
		const res = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, { body: png });
		expect(res.status).toBe(202);
		const job = await parsed(res, Job);
		expect(job.key).toBe(key);
		expect(await env.BUCKET.head(key)).not.toBeNull();
		// The same object through the unencoded spelling is the same object version, hence the same job.
		const again = await uploadViaApi(key.replace("% sure", "%25%20sure"), png);
		expect(again.id).toBe(job.id);
		expect((await jobsForKey(key)).map((r) => r.id)).toEqual([job.id]);
	});

	it("413 when Content-Length is over the limit, before reading the body", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("big.png");
		const res = await withVars({ MAX_UPLOAD_BYTES: String(png.byteLength - 1) }, put(key, png));
		expect(res.status).toBe(413);
		expect(await errorOf(res)).toMatchObject({
			code: "payload_too_large",
			details: { limit_bytes: png.byteLength - 1 },
		});
		expect(await env.BUCKET.head(key)).toBeNull();
		// Exactly at the limit is fine.
		const atLimit = await withVars({ MAX_UPLOAD_BYTES: String(png.byteLength) }, put(key, png));
		expect(atLimit.status).toBe(202);
	});

	it("a chunked body without Content-Length is stored whole too", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("chunked.png");
		const parts = [png.subarray(0, 5), png.subarray(5, 40), png.subarray(40)];
		const request = put(key, chunked(parts));
		expect(request.headers.get("content-length")).toBeNull();
		const res = await withVars({}, request);
		expect(res.status).toBe(202);
		const stored = await env.BUCKET.get(key);
		expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(png);
	});

	it("413 for a streamed body without Content-Length once the count passes the limit", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("streamed.png");
		const chunks = [png, png, png];
		const request = put(key, chunked(chunks));
		expect(request.headers.get("content-length")).toBeNull();
		const res = await withVars({ MAX_UPLOAD_BYTES: String(png.byteLength * 2) }, request);
		expect(res.status).toBe(413);
		expect(await env.BUCKET.head(key)).toBeNull();
	});

	for (const [label, body] of [
		["text", "hello, not an image"],
		["an empty body", ""],
		["a PDF", "%PDF-1.7\n1 0 obj\n"],
	] as const) {
		it(`415 for ${label}, sniffed from the bytes whatever the Content-Type says`, async () => {
			const key = uniqueKey("fake.png");
			const res = await call("PUT", `/v1/images/${key}`, { body, headers: { "content-type": "image/png" } });
			expect(res.status).toBe(415);
			expect((await errorOf(res)).code).toBe("unsupported_media_type");
			expect(await env.BUCKET.head(key)).toBeNull();
			expect(await jobsForKey(key)).toHaveLength(0);
		});
	}

	for (const [header, value] of [
		["X-Caption-Max-Tokens", "abc"],
		["X-Caption-Max-Tokens", "0"],
		["X-Caption-Max-Tokens", "100000"],
		["X-Caption-Prompt", "   "],
		["X-Callback-Url", "not a url"],
		["X-Callback-Url", "ftp://example.com/hook"],
	] as const) {
		it(`400 naming ${header} for ${JSON.stringify(value)}, and nothing is stored`, async () => {
			const key = uniqueKey("bad-header.png");
			const res = await call("PUT", `/v1/images/${key}`, {
				body: await fixture("small.png"),
				headers: { [header]: value },
			});
			expect(res.status).toBe(400);
			expect(await invalidFields(res.clone())).toEqual([header]);
			expect((await errorOf(res)).message).toContain(header);
			expect(await env.BUCKET.head(key)).toBeNull();
		});
	}
});
