/**
 * PUT /v1/images/{key}: the stored object, the queued job, length, size and type checks, header
 * and key validation, and which uploads of the same bytes make a new job.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { optionsKey } from "../../shared/jobs/options";
import { Job } from "../../shared/jobs/schema";
import { putObjectNotification } from "../../shared/queue/caption-jobs";
import status from "../../workers/status/index";
import { ensureNotificationJob } from "../../workers/status/jobs/create";
import { uploadMetadata } from "../../workers/status/routes/images";
import { fixture, uniqueKey } from "../support/fixtures";
import { jobsForKey, runConsumer } from "../support/queue";
import { ADMIN, call, errorOf, invalidFields, parsed, pollJob, uploadViaApi } from "./support";

/** The real status Worker with some settings changed, the way another deployment would run it. */
function withVars(vars: Partial<Record<"MAX_UPLOAD_BYTES" | "DEPLOY_MODE", string>>, request: Request) {
	return status.fetch(request, { ...env, ...vars }, createExecutionContext());
}

/** An upload as an HTTP client sends it: bytes with their Content-Length. */
const put = (key: string, body: Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
	new Request(`https://status.test/v1/images/${key}`, {
		method: "PUT",
		body,
		headers: {
			authorization: `Bearer ${ADMIN}`,
			...(body instanceof Uint8Array ? { "content-length": String(body.byteLength) } : {}),
			...headers,
		},
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

/** A job's status from when it is made until it has finished (an answer may come after the consumer took it). */
const ACTIVE: string[] = ["queued", "processing", "succeeded"];

/**
 * Uploads `bytes` (the version of `earlier`) twice at once: both answer one new job of that version,
 * not `earlier`, and it captions it. Returns that job.
 */
async function writtenBackTwiceAtOnce(key: string, bytes: Uint8Array, earlier: Job): Promise<Job> {
	const again = await Promise.all([uploadViaApi(key, bytes), uploadViaApi(key, bytes)]);
	// Queued, or already taken by the consumer when the second upload's answer is read.
	expect(again.map((j) => [ACTIVE.includes(j.status), j.etag])).toEqual([
		[true, earlier.etag],
		[true, earlier.etag],
	]);
	const [made, other] = again;
	expect(made?.id).not.toBe(earlier.id);
	expect(other?.id).toBe(made?.id);
	expect(await pollJob(made?.id ?? "")).toMatchObject({ status: "succeeded", etag: earlier.etag });
	if (made === undefined) throw new Error("no answer");
	return made;
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

	it("accepts the body under every Content-Type the OpenAPI document lists for it", async () => {
		const doc = z
			.object({
				paths: z.object({
					"/v1/images/{key}": z.object({
						put: z.object({ requestBody: z.object({ content: z.record(z.string(), z.unknown()) }) }),
					}),
				}),
			})
			.parse(await (await call("GET", "/openapi.json")).json());
		const types = Object.keys(doc.paths["/v1/images/{key}"].put.requestBody.content);
		expect(types).toContain("image/jpeg");
		const png = await fixture("small.png");
		for (const type of types) {
			const key = uniqueKey(`typed/${type.replace("/", "-")}.png`);
			const res = await call("PUT", `/v1/images/${key}`, { body: png, headers: { "content-type": type } });
			expect(res.status, type).toBe(202);
			expect((await env.BUCKET.head(key))?.httpMetadata?.contentType, type).toBe("image/png");
		}
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

	it("411 length_required for a streamed body without Content-Length, and nothing is stored", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("chunked.png");
		const request = put(key, chunked([png.subarray(0, 5), png.subarray(5)]));
		expect(request.headers.get("content-length")).toBeNull();
		const res = await withVars({}, request);
		expect(res.status).toBe(411);
		const error = await errorOf(res);
		expect(error.code).toBe("length_required");
		expect(error.message).toContain("Content-Length");
		expect(await env.BUCKET.head(key)).toBeNull();
		expect(await jobsForKey(key)).toHaveLength(0);
	});

	it("a body streamed in chunks with its Content-Length is stored whole, byte for byte", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("streamed.png");
		// The first chunk is shorter than what the type sniff needs.
		const parts = [png.subarray(0, 5), png.subarray(5, 40), png.subarray(40)];
		const res = await withVars({}, put(key, chunked(parts), { "content-length": String(png.byteLength) }));
		expect(res.status).toBe(202);
		const job = await parsed(res, Job);
		const stored = await env.BUCKET.get(key);
		expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(png);
		expect(job).toMatchObject({ size: png.byteLength, etag: stored?.etag, content_type: "image/png" });
	});

	it("400 when the body is shorter than its Content-Length, and nothing is stored", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("short.png");
		const request = put(key, chunked([png]), { "content-length": String(png.byteLength + 100) });
		const res = await withVars({}, request);
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(["Content-Length"]);
		expect(await env.BUCKET.head(key)).toBeNull();
		expect(await jobsForKey(key)).toHaveLength(0);
	});

	const notAnImage = "The body is not a JPEG, PNG, WebP, GIF or BMP image";
	for (const [label, body, message] of [
		["text", "hello, not an image", notAnImage],
		// What curl sends for a file it cannot read: the message says the body is empty.
		["an empty body", "", "The body is empty (0 bytes)"],
		["a PDF", "%PDF-1.7\n1 0 obj\n", notAnImage],
	] as const) {
		it(`415 for ${label}, sniffed from the bytes whatever the Content-Type says`, async () => {
			const key = uniqueKey("fake.png");
			const res = await call("PUT", `/v1/images/${key}`, { body, headers: { "content-type": "image/png" } });
			expect(res.status).toBe(415);
			expect(await errorOf(res)).toMatchObject({ code: "unsupported_media_type", message });
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

	it("uploading the same bytes again with other caption headers makes a new job, captioned with those", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("options.png");
		const first = await uploadViaApi(key, png, { "X-Caption-Prompt": "What colour is it?" });
		expect((await pollJob(first.id)).status).toBe("succeeded");
		const second = await uploadViaApi(key, png, { "X-Caption-Prompt": "How many cats?" });
		expect(second.id).not.toBe(first.id);
		expect(second.etag).toBe(first.etag);
		const done = await pollJob(second.id);
		expect(done).toMatchObject({ status: "succeeded", prompt: "How many cats?" });
		// The same options once more: the existing job again.
		const third = await uploadViaApi(key, png, { "X-Caption-Prompt": "How many cats?" });
		expect(third.id).toBe(second.id);
		const rows = await jobsForKey(key);
		expect(rows.map((r) => [r.id, r.prompt, r.status])).toEqual([
			[first.id, "What colour is it?", "succeeded"],
			[second.id, "How many cats?", "succeeded"],
		]);
	});

	it("the same bytes uploaded again with other headers before the first upload's notification came: both jobs are captioned", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("options-race.png");
		// The first upload's notification has not come (production mode: the bucket's rule sends it, and
		// would read the object's metadata only after the second upload changed it).
		const firstRes = await withVars(
			{ DEPLOY_MODE: "production" },
			put(key, png, { "X-Caption-Prompt": "What colour is it?" }),
		);
		const first = await parsed(firstRes, Job);
		const second = await uploadViaApi(key, png, { "X-Caption-Prompt": "How many cats?" });
		expect(second.id).not.toBe(first.id);
		// Every notification of the version now names the second upload's options: the second upload
		// sends the first job by id.
		expect(await pollJob(first.id)).toMatchObject({ status: "succeeded", prompt: "What colour is it?" });
		expect(await pollJob(second.id)).toMatchObject({ status: "succeeded", prompt: "How many cats?" });
	});

	it("uploads of the same bytes with other headers written to R2 in one order and to D1 in the other: the first one's job is sent by id too", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("options-order.png");
		const firstHeaders = { "X-Caption-Prompt": "What colour is it?" };
		// The first upload's R2 write...
		const metadata = uploadMetadata(firstHeaders);
		const object = await env.BUCKET.put(key, png, {
			httpMetadata: { contentType: "image/png" },
			customMetadata: metadata,
		});
		// ...then the whole second upload, which the notifications of the version now resolve to...
		const second = await uploadViaApi(key, png, { "X-Caption-Prompt": "How many cats?" });
		// ...then the first upload's D1 transaction, as PUT /v1/images makes it.
		const { row, unclaimable } = await ensureNotificationJob(env.DB, {
			bucket: "images",
			key,
			etag: object?.etag ?? "",
			size: png.byteLength,
			contentType: "image/png",
			prompt: firstHeaders["X-Caption-Prompt"],
			maxTokens: null,
			callbackUrl: null,
			keyId: null,
			optionsKey: await optionsKey(metadata),
		});
		expect(row.id).not.toBe(second.id);
		// No notification will claim it (they find the second upload's options): the upload sends it by id.
		expect(unclaimable).toContain(row.id);
		const { ids, result } = await runConsumer(unclaimable.map((id) => ({ kind: "caption-job", job_id: id })));
		expect(result.explicitAcks).toEqual(ids);
		expect(await pollJob(row.id)).toMatchObject({ status: "succeeded", prompt: "What colour is it?" });
		expect(await pollJob(second.id)).toMatchObject({ status: "succeeded", prompt: "How many cats?" });
	});

	it("bytes written again after their job failed object_not_found (replaced before it ran): a new job, captioned, one for uploads at once", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("a-b-a.png");
		// A, whose notification comes only after B replaced it: its job fails object_not_found.
		const first = await parsed(await withVars({ DEPLOY_MODE: "production" }, put(key, png)), Job);
		const second = await uploadViaApi(key, await fixture("small.jpg"));
		expect(await pollJob(second.id)).toMatchObject({ status: "succeeded" });
		const { ids, result } = await runConsumer([
			putObjectNotification({ bucket: "images", key, size: png.byteLength, etag: first.etag }),
		]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await pollJob(first.id)).toMatchObject({ status: "failed", error: { code: "object_not_found" } });
		// A again, twice at once: the object is there, so its upload answers a job that will caption it.
		const third = await writtenBackTwiceAtOnce(key, png, first);
		const caption = await call("GET", `/v1/captions/${key}`);
		expect(await caption.json()).toMatchObject({ etag: first.etag, job_id: third.id });
		// The same upload once more: that job again, nothing new.
		expect((await uploadViaApi(key, png)).id).toBe(third.id);
		expect((await jobsForKey(key)).map((r) => [r.id, r.status])).toEqual([
			[first.id, "failed"],
			[second.id, "succeeded"],
			[third.id, "succeeded"],
		]);
	});

	it("an earlier version uploaded again after a later one was captioned (A, B, A): a new job captions A, and its caption is current", async () => {
		const png = await fixture("small.png");
		const jpeg = await fixture("small.jpg");
		const key = uniqueKey("restored.png");
		const currentCaption = async () =>
			parsed(
				await call("GET", `/v1/captions/${key}`),
				z.object({ etag: z.string(), text: z.string(), job_id: z.string() }),
			);
		const a = await uploadViaApi(key, png);
		expect(await pollJob(a.id)).toMatchObject({ status: "succeeded" });
		const b = await uploadViaApi(key, jpeg);
		expect(await pollJob(b.id)).toMatchObject({ status: "succeeded" });
		expect(await currentCaption()).toMatchObject({ etag: b.etag, text: expect.stringContaining("JPEG") });
		// A again, twice at once (the same bytes and headers: A's etag and options key).
		const restored = await writtenBackTwiceAtOnce(key, png, a);
		expect(await currentCaption()).toMatchObject({
			etag: a.etag,
			job_id: restored.id,
			text: expect.stringContaining("PNG"),
		});
		// B again, then A again: each restore makes one job, and the current caption follows the bytes.
		const b2 = await uploadViaApi(key, jpeg);
		expect(b2.id).not.toBe(b.id);
		expect(await pollJob(b2.id)).toMatchObject({ status: "succeeded", etag: b.etag });
		expect(await currentCaption()).toMatchObject({ etag: b.etag, job_id: b2.id });
		const a3 = await uploadViaApi(key, png);
		expect([a.id, restored.id]).not.toContain(a3.id);
		expect(await pollJob(a3.id)).toMatchObject({ status: "succeeded", etag: a.etag });
		expect(await currentCaption()).toMatchObject({ etag: a.etag, job_id: a3.id, text: expect.stringContaining("PNG") });
		// A once more while its caption is current: that job again, no model call.
		expect((await uploadViaApi(key, png)).id).toBe(a3.id);
		expect((await jobsForKey(key)).map((r) => [r.id, r.source, r.status])).toEqual([
			[a.id, "notification", "succeeded"],
			[b.id, "notification", "succeeded"],
			[restored.id, "api", "succeeded"],
			[b2.id, "api", "succeeded"],
			[a3.id, "api", "succeeded"],
		]);
	});

	it("the same bytes uploaded again answer the upload's job, not a POST /v1/jobs job made since", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("upload-then-api.png");
		const first = await uploadViaApi(key, png);
		expect(await pollJob(first.id)).toMatchObject({ status: "succeeded" });
		const asked = await parsed(
			await call("POST", "/v1/jobs", { json: { key, prompt: "How many shapes?", max_tokens: 40 } }),
			Job,
		);
		expect(await pollJob(asked.id)).toMatchObject({ status: "succeeded", prompt: "How many shapes?" });
		// No headers: the upload's own options, so its own job; the asked job's prompt is not this upload's.
		const again = await uploadViaApi(key, png);
		expect(again).toMatchObject({ id: first.id, prompt: expect.not.stringContaining("shapes") });
		// Nor one with no options of its own: a job of POST /v1/jobs is never made in an upload's place.
		const plain = await parsed(await call("POST", "/v1/jobs", { json: { key } }), Job);
		expect(await pollJob(plain.id)).toMatchObject({ status: "succeeded" });
		expect((await uploadViaApi(key, png)).id).toBe(first.id);
	});

	it("an earlier upload's job, sent by id, runs with its own headers only: none of the later upload's", async () => {
		const png = await fixture("small.png");
		const key = uniqueKey("options-own.png");
		const firstRes = await withVars({ DEPLOY_MODE: "production" }, put(key, png, { "X-Caption-Output": "title" }));
		const first = await parsed(firstRes, Job);
		// The same bytes with other headers: the object's metadata is now theirs.
		const second = await uploadViaApi(key, png, {
			"X-Caption-Output": "tags",
			"X-Caption-Language": "de",
			"X-Caption-Write-Back": "sidecar",
		});
		const firstDone = await pollJob(first.id);
		expect(firstDone).toMatchObject({ status: "succeeded", output: "title", language: null, write_back: null });
		expect(await pollJob(second.id)).toMatchObject({
			status: "succeeded",
			output: "tags",
			language: "de",
			write_back: { target: "sidecar", status: "written" },
		});
		// The sidecar is the second job's tags, never the first job's title.
		const sidecar = await env.BUCKET.get(key.replace(/\.png$/, ".txt"));
		expect(sidecar?.customMetadata?.["caption-job"]).toBe(second.id);
	});

	it("400 naming key for a path that is not valid percent-encoding, on every route with {key}; nothing is stored", async () => {
		const prefix = uniqueKey("encoding");
		for (const bad of [`${prefix}%2F%C3.png`, `${prefix}%2F%ZZ.png`, `${prefix}%E2%82.png`]) {
			const upload = await call("PUT", `/v1/images/${bad}`, { body: await fixture("small.png") });
			expect(upload.status, bad).toBe(400);
			expect(await invalidFields(upload)).toEqual(["key"]);
			for (const [method, path] of [
				["GET", `/v1/images/${bad}`],
				["GET", `/v1/captions/${bad}`],
			] as const) {
				const res = await call(method, path);
				expect(res.status, `${method} ${path}`).toBe(400);
				expect(await invalidFields(res)).toEqual(["key"]);
			}
		}
		expect((await env.BUCKET.list({ prefix })).objects).toEqual([]);
		// A literal % is %25, and decodes as usual.
		const literal = await uploadViaApi(`${prefix}/100%25.png`, await fixture("small.png"));
		expect(literal.key).toBe(`${prefix}/100%.png`);
	});

	const longKey = `${"é".repeat(512)}.png`; // 512 characters, 1,028 UTF-8 bytes
	for (const [label, key] of [
		["a .. segment", "albums/../secret.png"],
		["a . segment", "albums/./cat.png"],
		["a key that starts with ..", "../secret.png"],
		["a leading /", "/albums/cat.png"],
		["a newline", "albums/cat\n.png"],
		["a NUL byte", "albums/cat\u0000.png"],
		["DEL", "albums/cat\u007f.png"],
		["over 1,024 UTF-8 bytes in fewer characters", longKey],
		["a backslash", "albums\\..\\secret.png"],
		["an empty segment", "albums//cat.png"],
		["a right-to-left override", "albums/cat\u202Egnp.exe"],
		["a bidi isolate", "albums/\u2066cat\u2069.png"],
		["a percent-encoded .. segment", "albums/%2e%2e/secret.png"],
		["a half-encoded .. segment", "albums/.%2E/secret.png"],
		// A sidecar's name: never captioned, and its own sidecar would overwrite it.
		["a .txt key (image bytes or not)", "albums/cat.txt"],
		["a .JSON key", "albums/cat.JSON"],
	] as const) {
		it(`400 naming key for ${label}, and nothing is stored`, async () => {
			const res = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, { body: await fixture("small.png") });
			expect(res.status).toBe(400);
			expect(await invalidFields(res)).toEqual(["key"]);
			// R2 itself refuses to look up a key over 1,024 bytes.
			expect(await env.BUCKET.head(key).catch(() => null)).toBeNull();
			expect(await jobsForKey(key)).toHaveLength(0);
		});
	}

	it("accepts a key of exactly 1,024 UTF-8 bytes, and dots inside a segment", async () => {
		const prefix = uniqueKey("");
		// Two bytes per "é"; one ASCII byte more when the unique prefix's length is odd.
		const fill = 1024 - prefix.length - 13;
		const key = `${prefix}..cat.v2.${"x".repeat(fill % 2)}${"é".repeat(Math.floor(fill / 2))}.png`;
		expect(new TextEncoder().encode(key).byteLength).toBe(1024);
		const res = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, { body: await fixture("small.png") });
		expect(res.status).toBe(202);
		expect(await env.BUCKET.head(key)).not.toBeNull();
	});

	it("the caption headers at their largest (2,000 three-byte characters, a 2,048-character URL) fit R2's 8 KiB and are stored", async () => {
		const key = uniqueKey("metadata-max.png");
		const url = `https://example.com/${"a".repeat(2048 - 20)}`;
		const res = await call("PUT", `/v1/images/${key}`, {
			body: await fixture("small.png"),
			headers: { "X-Caption-Prompt": "€".repeat(2000), "X-Callback-Url": url, "X-Caption-Max-Tokens": "2048" },
		});
		expect(res.status).toBe(202);
		expect((await env.BUCKET.head(key))?.customMetadata?.["callback-url"]).toBe(url);
	});

	it("400 naming each caption header that was not UTF-8 (read as U+FFFD), and nothing is stored; UTF-8 text is taken", async () => {
		const key = uniqueKey("latin1/cafe.png");
		// What the runtime makes of "Décris" sent in Latin-1 (the byte 0xE9 alone is not UTF-8).
		const res = await call("PUT", `/v1/images/${encodeURIComponent(key)}`, {
			body: await fixture("small.png"),
			headers: { "X-Caption-Prompt": "D\uFFFDcris", "X-Caption-Language": "fr" },
		});
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(["X-Caption-Prompt"]);
		expect(await env.BUCKET.head(key)).toBeNull();
		expect(await jobsForKey(key)).toEqual([]);
		const job = await uploadViaApi(key, await fixture("small.png"), { "X-Caption-Prompt": "Décris l’image ✓" });
		expect(job.prompt).toBe("Décris l’image ✓");
	});

	it("400 metadata_too_large naming the headers when they would make over R2's 8 KiB; up to it passes", () => {
		// Past the headers' own bounds, as a future header could: "callback-url" (12) + the URL, and "prompt" + 5.
		const url = (length: number) => `https://example.com/${"a".repeat(length - 20)}`;
		const over = () => uploadMetadata({ "X-Caption-Prompt": "hello", "X-Callback-Url": url(8193 - 12 - 11) });
		expect(over).toThrow(
			expect.objectContaining({ code: "metadata_too_large", message: expect.stringContaining("8193 bytes") }),
		);
		expect(over).toThrow(
			expect.objectContaining({
				details: [
					expect.objectContaining({ field: "X-Caption-Prompt" }),
					expect.objectContaining({ field: "X-Callback-Url" }),
				],
			}),
		);
		expect(
			uploadMetadata({ "X-Caption-Prompt": "hello", "X-Callback-Url": url(8192 - 12 - 11) })["callback-url"],
		).toHaveLength(8192 - 12 - 11);
	});

	it("metadata R2 refuses as too large though its UTF-8 count is under 8 KiB: 400 metadata_too_large, nothing stored", async () => {
		// A schema of about 4.3 KB with one character over U+00FF (sent escaped, stored as the
		// character): 4.3 KB in UTF-8, but local R2 counts such a string at two bytes a character.
		const schema = { type: "object", description: `${"a".repeat(4300)}€` };
		// A header is Latin-1: the character goes as a JSON escape.
		const output = JSON.stringify({ json_schema: schema }).replace("€", "\\u20ac");
		const key = uniqueKey("metadata-refused.png");
		const png = await fixture("small.png");
		const res = await call("PUT", `/v1/images/${key}`, { body: png, headers: { "X-Caption-Output": output } });
		expect(res.status).toBe(400);
		// Streamed in chunks (put through a FixedLengthStream), the same answer.
		const headers = { "X-Caption-Output": output, "content-length": String(png.byteLength) };
		const streamed = await withVars({}, put(key, chunked([png.subarray(0, 5), png.subarray(5)]), headers));
		expect(streamed.status).toBe(400);
		expect((await errorOf(streamed)).code).toBe("metadata_too_large");
		const error = await errorOf(res);
		expect(error).toMatchObject({
			code: "metadata_too_large",
			details: [expect.objectContaining({ field: "X-Caption-Output" })],
		});
		expect(await env.BUCKET.head(key)).toBeNull();
		expect(await jobsForKey(key)).toEqual([]);
	});

	it("counts the metadata in UTF-8 bytes: under 8 KiB in characters but over it in bytes is refused", () => {
		// "prompt" + 1,000 × "é" (2 bytes each) + "callback-url" + a 7,000-character URL: 8,018
		// characters, 9,018 bytes. Local R2 would store it; production R2 refuses it.
		expect(() =>
			uploadMetadata({
				"X-Caption-Prompt": "é".repeat(1000),
				"X-Callback-Url": `https://example.com/${"a".repeat(7000 - 20)}`,
			}),
		).toThrow(expect.objectContaining({ code: "metadata_too_large" }));
	});
});
