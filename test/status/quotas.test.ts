/**
 * Quotas of API keys: a request rate per key and a cap on its jobs in flight, both answered with
 * 429, `Retry-After` and the error body; JSON bodies over their limit are a 413. The test pool's
 * limits are out of the way, so these run the real status Worker with low ones, the way a
 * deployment with those settings would.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createR2cClient, uploadImage } from "../../client/index";
import { Job } from "../../shared/jobs/schema";
import { putObjectNotification } from "../../shared/queue/caption-jobs";
import status from "../../workers/status/index";
import { countJobsInFlight } from "../../workers/status/quotas";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { jobsForKey, runConsumer } from "../support/queue";
import { ADMIN, createKey, errorOf, parsed } from "./support";

type Limits = Partial<
	Record<"RATE_LIMIT_PER_MINUTE" | "RATE_LIMIT_BURST" | "MAX_JOBS_IN_FLIGHT" | "MAX_JSON_BYTES" | "DEPLOY_MODE", string>
>;

/** A request to the real status Worker running with these settings. */
function callWith(
	limits: Limits,
	token: string,
	method: string,
	path: string,
	init: { body?: BodyInit; headers?: Record<string, string> } = {},
) {
	const headers = new Headers(init.headers);
	headers.set("authorization", `Bearer ${token}`);
	const request = new Request(`https://status.test${path}`, { method, headers, body: init.body });
	return status.fetch(request, { ...env, ...limits }, createExecutionContext());
}

describe("the request rate of an API key", () => {
	// One request a second, three at once after an idle spell.
	const limits: Limits = { RATE_LIMIT_PER_MINUTE: "60", RATE_LIMIT_BURST: "3" };

	it("lets the burst through, then answers 429 rate_limited with Retry-After and the error body", async () => {
		const key = await createKey();
		// Four at once, so that a slot refilled while they were on their way (a busy machine takes
		// over a second for four requests one after another) cannot let the fourth through.
		const answers = await Promise.all(Array.from({ length: 4 }, () => callWith(limits, key.token, "GET", "/v1/jobs")));
		expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);

		const [refused] = answers.filter((r) => r.status === 429);
		if (!refused) throw new Error("no request was refused");
		expect(refused.headers.get("retry-after")).toBe("1");
		expect(await errorOf(refused)).toEqual({
			code: "rate_limited",
			message: "This API key is limited to 60 requests per minute",
			details: { limit_per_minute: 60, burst: 3, retry_after_seconds: 1 },
		});

		// After Retry-After, the key has a slot again.
		await new Promise((resolve) => setTimeout(resolve, 1100));
		expect((await callWith(limits, key.token, "GET", "/v1/jobs")).status).toBe(200);
	});

	it("Retry-After is the wait rounded up to whole seconds: 10 when the next slot is 9.9 s away", async () => {
		// One request every 10 s, no burst: the second request, a moment after the first, waits just under 10 s.
		const slow: Limits = { RATE_LIMIT_PER_MINUTE: "6", RATE_LIMIT_BURST: "1" };
		const key = await createKey();
		expect((await callWith(slow, key.token, "GET", "/v1/jobs")).status).toBe(200);
		await new Promise((resolve) => setTimeout(resolve, 100));
		const refused = await callWith(slow, key.token, "GET", "/v1/jobs");
		expect(refused.status).toBe(429);
		expect(refused.headers.get("retry-after")).toBe("10");
		expect((await errorOf(refused)).details).toMatchObject({ retry_after_seconds: 10 });
	});

	it("each key has its own limit, and the admin token has none", async () => {
		const [busy, other] = await Promise.all([createKey(), createKey()]);
		for (let i = 0; i < 3; i++) await callWith(limits, busy.token, "GET", "/v1/jobs");
		expect((await callWith(limits, busy.token, "GET", "/v1/stats")).status).toBe(429);
		expect((await callWith(limits, other.token, "GET", "/v1/stats")).status).toBe(200);
		const admin = await Promise.all(Array.from({ length: 6 }, () => callWith(limits, ADMIN, "GET", "/v1/jobs")));
		expect(admin.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
	});

	it("a refused upload stores nothing", async () => {
		const key = await createKey();
		const png = await fixture("small.png");
		for (let i = 0; i < 3; i++) await callWith(limits, key.token, "GET", "/v1/jobs");
		const objectKey = uniqueKey("rate-limited.png");
		const res = await callWith(limits, key.token, "PUT", `/v1/images/${objectKey}`, {
			body: png,
			headers: { "content-length": String(png.byteLength) },
		});
		expect(res.status).toBe(429);
		expect(await env.BUCKET.head(objectKey)).toBeNull();
		expect(await jobsForKey(objectKey)).toHaveLength(0);
	});
});

describe("jobs in flight per API key", () => {
	// Production mode: nothing enqueues the uploads' notifications, so their jobs stay queued.
	const limits: Limits = { MAX_JOBS_IN_FLIGHT: "2", DEPLOY_MODE: "production" };

	async function put(token: string, key: string, bytes: Uint8Array) {
		return callWith(limits, token, "PUT", `/v1/images/${key}`, {
			body: bytes,
			headers: { "content-length": String(bytes.byteLength) },
		});
	}

	it("refuses a third upload and a POST /v1/jobs with 429 too_many_jobs_in_flight until one finishes", async () => {
		const key = await createKey();
		const png = await fixture("small.png");
		const keys = [uniqueKey("a.png"), uniqueKey("b.png"), uniqueKey("c.png")];
		const first = await put(key.token, keys[0] ?? "", png);
		const second = await put(key.token, keys[1] ?? "", png);
		expect([first.status, second.status]).toEqual([202, 202]);
		const firstJob = await parsed(first, Job);
		const rows = await env.DB.prepare("SELECT key_id, status FROM jobs WHERE id = ?").bind(firstJob.id).first();
		expect(rows).toEqual({ key_id: key.id, status: "queued" });

		const third = await put(key.token, keys[2] ?? "", png);
		expect(third.status).toBe(429);
		expect(third.headers.get("retry-after")).toBe("5");
		expect(await errorOf(third)).toEqual({
			code: "too_many_jobs_in_flight",
			message: "This API key already has 2 jobs queued or processing; the limit is 2",
			details: { limit: 2, retry_after_seconds: 5 },
		});
		expect(await env.BUCKET.head(keys[2] ?? "")).toBeNull();

		const rerun = await callWith(limits, key.token, "POST", "/v1/jobs", {
			body: JSON.stringify({ key: keys[0] }),
			headers: { "content-type": "application/json" },
		});
		expect(rerun.status).toBe(429);
		expect((await errorOf(rerun)).code).toBe("too_many_jobs_in_flight");

		// The admin token is not capped, and other keys have their own count.
		expect((await put(ADMIN, uniqueKey("admin.png"), png)).status).toBe(202);
		const other = await createKey();
		expect((await put(other.token, uniqueKey("other.png"), png)).status).toBe(202);

		// The consumer finishes the first job: the key may upload again.
		const object = await env.BUCKET.head(keys[0] ?? "");
		const notification = putObjectNotification({
			bucket: "images",
			key: keys[0] ?? "",
			size: object?.size ?? 0,
			etag: object?.etag ?? "",
		});
		await runConsumer([notification]);
		expect((await jobsForKey(keys[0] ?? ""))[0]?.status).toBe("succeeded");
		expect((await put(key.token, keys[2] ?? "", png)).status).toBe(202);
	});

	it("counts through the partial index, reading at most the cap's worth of the key's entries", async () => {
		const key = await createKey();
		const now = Date.now();
		const insert = env.DB.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, status, created_at, updated_at, key_id)
			VALUES (?1, 'api', 'images', ?2, 'e', ?3, ?4, ?4, ?5)`,
		);
		const statuses = ["queued", "processing", "succeeded", "failed"];
		await env.DB.batch(
			Array.from({ length: 40 }, (_, i) =>
				insert.bind(`job_cap_${key.id}_${i}`, uniqueKey("cap.png"), statuses[i % 4], now, key.id),
			),
		);
		expect(await countJobsInFlight(env.DB, key.id, 1000)).toBe(20);
		expect(await countJobsInFlight(env.DB, key.id, 5)).toBe(5);
		const result = await env.DB.prepare(
			`SELECT count(*) AS n FROM (SELECT 1 FROM jobs
				WHERE key_id = ?1 AND status IN ('queued', 'processing') LIMIT ?2)`,
		)
			.bind(key.id, 5)
			.run();
		expect(result.meta.rows_read).toBeLessThanOrEqual(6);
		const plan = await env.DB.prepare(
			`EXPLAIN QUERY PLAN SELECT 1 FROM jobs WHERE key_id = ?1 AND status IN ('queued', 'processing') LIMIT ?2`,
		)
			.bind(key.id, 5)
			.all();
		const details = plan.results.map((r) => z.object({ detail: z.string() }).parse(r).detail);
		expect(details.join(" ")).toContain("jobs_key_in_flight");
	});
});

describe("JSON bodies", () => {
	it("413 payload_too_large over MAX_JSON_BYTES, declared or streamed", async () => {
		const objectKey = uniqueKey("json-limit.png");
		await upload(objectKey, await fixture("small.png"));
		const body = JSON.stringify({ key: objectKey, prompt: "x".repeat(200) });
		const limits: Limits = { MAX_JSON_BYTES: String(body.length - 1) };
		const declared = await callWith(limits, ADMIN, "POST", "/v1/jobs", {
			body,
			headers: { "content-type": "application/json", "content-length": String(body.length) },
		});
		expect(declared.status).toBe(413);
		expect(await errorOf(declared)).toMatchObject({
			code: "payload_too_large",
			details: { limit_bytes: body.length - 1 },
		});
		const streamed = await callWith(limits, ADMIN, "POST", "/v1/jobs", {
			body: new Blob([body]).stream(),
			headers: { "content-type": "application/json" },
		});
		expect(streamed.status).toBe(413);
		expect(await jobsForKey(objectKey)).toHaveLength(0);

		const fits = await callWith({ MAX_JSON_BYTES: String(body.length) }, ADMIN, "POST", "/v1/jobs", {
			body,
			headers: { "content-type": "application/json", "content-length": String(body.length) },
		});
		expect(fits.status).toBe(202);
	});

	it("an operation that takes no body answers as without one: a stray body over the limit or not UTF-8 is not refused", async () => {
		const limits: Limits = { MAX_JSON_BYTES: "16" };
		const stray = JSON.stringify({ note: "x".repeat(64) });
		const notUtf8 = new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]);
		for (const [method, path, body] of [
			["POST", "/v1/batches/bat_missing/cancel", stray],
			["POST", "/v1/webhooks/wh_missing/rotate-secret", stray],
			["DELETE", "/v1/webhooks/wh_missing", notUtf8],
			["POST", "/v1/batches/bat_missing/start", notUtf8],
		] as const) {
			const res = await callWith(limits, ADMIN, method, path, {
				body,
				headers: { "content-type": "application/json" },
			});
			// 404, as the same request without a body: these operations document neither 413 nor 400.
			expect(res.status, `${method} ${path}`).toBe(404);
			expect((await errorOf(res)).code).toBe("not_found");
		}
		// An operation that takes JSON still refuses both.
		const createJob = await callWith(limits, ADMIN, "POST", "/v1/jobs", {
			body: stray,
			headers: { "content-type": "application/json" },
		});
		expect(createJob.status).toBe(413);
		const key = await callWith({}, ADMIN, "POST", "/v1/keys", {
			body: notUtf8,
			headers: { "content-type": "application/json" },
		});
		expect(key.status).toBe(400);
	});
});

describe("the typed client (r2c, the dashboard) under an API key's rate limit", () => {
	it("waits out each 429's Retry-After and sends the call again, so every upload gets its job", async () => {
		const limits: Limits = { RATE_LIMIT_PER_MINUTE: "60", RATE_LIMIT_BURST: "2" };
		const key = await createKey();
		const answered: number[] = [];
		const waits: number[] = [];
		const api = createR2cClient({
			baseUrl: "https://status.test",
			token: key.token,
			fetch: async (input, init) => {
				// What an HTTP client puts on the wire: the body with its Content-Length.
				const request = new Request(input, init);
				const body = request.body === null ? null : await request.arrayBuffer();
				const headers = new Headers(request.headers);
				if (body !== null) headers.set("content-length", String(body.byteLength));
				const sent = new Request(request.url, { method: request.method, headers, body });
				const response = await Promise.resolve(status.fetch(sent, { ...env, ...limits }, createExecutionContext()));
				answered.push(response.status);
				return response;
			},
			onRateLimited: (seconds) => waits.push(seconds),
		});
		const bytes = new Blob([await fixture("small.png")]);
		const keys = Array.from({ length: 4 }, (_, i) => uniqueKey(`client-retry-${i}-`));
		const jobs = [];
		for (const k of keys) jobs.push(await uploadImage(api, `${k}.png`, bytes));

		expect(jobs.map((j) => j.key)).toEqual(keys.map((k) => `${k}.png`));
		expect(jobs.every((j) => j.status === "queued")).toBe(true);
		expect(answered.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
		expect(answered.filter((s) => s === 202).length).toBe(4);
		expect(waits.every((s) => s === 1)).toBe(true);

		const once = createR2cClient({
			baseUrl: "https://status.test",
			token: key.token,
			retries429: 0,
			fetch: async (input, init) =>
				status.fetch(new Request(input, init), { ...env, ...limits }, createExecutionContext()),
		});
		const refused = await once.GET("/v1/jobs");
		const again = await once.GET("/v1/jobs");
		const third = await once.GET("/v1/jobs");
		expect([refused.response.status, again.response.status, third.response.status]).toContain(429);
	});
});
