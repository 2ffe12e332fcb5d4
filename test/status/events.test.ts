/**
 * GET /v1/events: order, filters, scope, resuming with Last-Event-ID or ?after=, stream tokens.
 * Jobs finish through the consumer's own finishJob (the row, its outbox event, the hub told), and
 * one through the real queue and model emulator; a batch's cancellation through the status route
 * that records it.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Batch } from "../../shared/batches/schema";
import { KeepAliveSeconds } from "../../shared/events/hub";
import { eventIdOf, headPosition } from "../../shared/events/stream-events";
import { Job } from "../../shared/jobs/schema";
import { finishStatement } from "../../shared/jobs/store";
import { BatchWebhookPayload, JobWebhookPayload } from "../../shared/webhooks/schema";
import { finishJob } from "../../workers/consumer/finish";
import { StreamToken } from "../../workers/status/routes/events";
import { unsentBatch } from "../batches/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { sseReader } from "../support/sse";
import { ADMIN, call, createKey, errorOf, invalidFields, parsed, revokeKey, uploadViaApi } from "./support";

/** Opens a stream and waits for its first comment (the hub has registered it). */
async function open(query: string, options: { token?: string | null; headers?: Record<string, string> } = {}) {
	const res = await call("GET", `/v1/events${query}`, options);
	expect(res.status, await (res.status === 200 ? "" : res.clone().text())).toBe(200);
	expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
	const reader = sseReader(res);
	expect(await reader.next()).toEqual({ kind: "comment", text: "connected" });
	return reader;
}

/** A job of `key` that finishes now the way the consumer finishes one (hub notified). */
async function finish(key: string, outcome: "succeeded" | "failed", options: { batchId?: string } = {}) {
	const now = Date.now();
	const job = await insertJob({
		key,
		status: "processing",
		attempts: 1,
		lease_token: "lease",
		lease_expires_at: now + 60_000,
		started_at: now,
		batch_id: options.batchId ?? null,
	});
	const result =
		outcome === "succeeded"
			? { status: "succeeded" as const, caption: "A live caption." }
			: { status: "failed" as const, code: "model_error" as const, message: "The model refused." };
	const finished = await finishJob(env, finishStatement(env.DB, job, now, result, {}), job.id, now);
	if (!finished) throw new Error("the job did not finish");
	return finished;
}

const jobEvent = (data: string) => JobWebhookPayload.parse(JSON.parse(data));

describe.concurrent("GET /v1/events", () => {
	it("sends each event once, in commit order, with an ordered id, its type and its webhook body", async () => {
		const prefix = uniqueKey("order/");
		const stream = await open(`?prefix=${encodeURIComponent(prefix)}`);
		const a = await finish(`${prefix}a.png`, "succeeded");
		const b = await finish(`${prefix}b.png`, "failed");
		const c = await finish(`${prefix}c.png`, "succeeded");
		const events = [await stream.nextEvent(), await stream.nextEvent(), await stream.nextEvent()];
		expect(events.map((e) => e.event)).toEqual(["job.succeeded", "job.failed", "job.succeeded"]);
		expect(events.map((e) => jobEvent(e.data).data.id)).toEqual([a.id, b.id, c.id]);
		const ids = events.map((e) => e.id ?? "");
		expect([...ids].sort()).toEqual(ids);
		expect(new Set(ids).size).toBe(3);
		// The body is the job's webhook body: the Job JSON as GET /v1/jobs/{id} shows it.
		const job = await parsed(await call("GET", `/v1/jobs/${a.id}`), Job);
		expect(jobEvent(events[0]?.data ?? "")).toMatchObject({ type: "job.succeeded", data: job });
		expect(await stream.drain(500)).toEqual([]);
		await stream.close();
	});

	it("filters by types, prefix and batch_id", async () => {
		const prefix = uniqueKey("filters/");
		const batch = await unsentBatch(`${prefix}batch/`);
		const failedOnly = await open(`?prefix=${encodeURIComponent(prefix)}&types=job.failed`);
		const inBatch = await open(`?batch_id=${batch.id}`);
		const underSub = await open(`?prefix=${encodeURIComponent(`${prefix}sub/`)}`);
		const ok = await finish(`${prefix}ok.png`, "succeeded");
		const bad = await finish(`${prefix}bad.png`, "failed");
		const sub = await finish(`${prefix}sub/x.png`, "succeeded");
		const batched = await finish(`${prefix}batch/y.png`, "failed", { batchId: batch.id });
		const failed = await failedOnly.drain(1500);
		expect(failed.map((e) => jobEvent(e.data).data.id)).toEqual([bad.id, batched.id]);
		// The batch's stream carries its jobs' events, and its progress (a running batch's, sent as
		// its jobs finish): nothing of another batch or of no batch.
		const ofBatch = await inBatch.drain(500);
		const [jobs, others] = [
			ofBatch.filter((e) => e.event?.startsWith("job.")),
			ofBatch.filter((e) => !e.event?.startsWith("job.")),
		];
		expect(jobs.map((e) => jobEvent(e.data).data.id)).toEqual([batched.id]);
		// Recorded by the webhooks Worker as it fans the job's event out, and sent at once (the hub is
		// told), not at the hub's next 15-second read.
		expect(others.length).toBeGreaterThan(0);
		for (const e of others) {
			expect(e.event).toBe("batch.progress");
			expect(JSON.parse(e.data)).toMatchObject({ type: "batch.progress", data: { id: batch.id } });
		}
		expect((await underSub.drain(500)).map((e) => jobEvent(e.data).data.id)).toEqual([sub.id]);
		expect(ok.id).not.toBe(sub.id);
		await Promise.all([failedOnly.close(), inBatch.close(), underSub.close()]);
	});

	it("carries a batch's event: its cancellation, with the Batch JSON its webhook carries", async () => {
		const prefix = uniqueKey("cancel/");
		const batch = await unsentBatch(prefix);
		const stream = await open(`?batch_id=${batch.id}&types=batch.cancelled`);
		expect((await call("POST", `/v1/batches/${batch.id}/cancel`)).status).toBe(200);
		const event = await stream.nextEvent(15_000);
		expect(event.event).toBe("batch.cancelled");
		const body = BatchWebhookPayload.parse(JSON.parse(event.data));
		expect(body.data).toEqual(await parsed(await call("GET", `/v1/batches/${batch.id}`), Batch));
		await stream.close();
	});

	it("gets a job captioned through the real queue and model emulator", async () => {
		const key = uniqueKey("live/small.png");
		const stream = await open(`?prefix=${encodeURIComponent(key)}`);
		const job = await uploadViaApi(key, await fixture("small.png"));
		const event = await stream.nextEvent(20_000);
		expect(event.event).toBe("job.succeeded");
		expect(jobEvent(event.data).data).toMatchObject({ id: job.id, status: "succeeded" });
		await stream.close();
	});

	it("a scoped key never receives another prefix's event", async () => {
		const mine = uniqueKey("scope-mine/");
		const other = uniqueKey("scope-other/");
		const key = await createKey(mine);
		const stream = await open("", { token: key.token });
		// Even asking for the other prefix gives nothing outside the key's own.
		const asking = await open(`?prefix=${encodeURIComponent(other)}`, { token: key.token });
		await finish(`${other}x.png`, "succeeded");
		const own = await finish(`${mine}y.png`, "succeeded");
		await finish(`${other}z.png`, "failed");
		const received = await stream.drain(1500);
		expect(received.map((e) => jobEvent(e.data).data.key)).toEqual([own.key]);
		expect(await asking.drain(200)).toEqual([]);
		// A batch outside the scope does not exist for it.
		const foreign = await unsentBatch(`${other}b/`);
		const res = await call("GET", `/v1/events?batch_id=${foreign.id}`, { token: key.token });
		expect(res.status).toBe(404);
		await Promise.all([stream.close(), asking.close()]);
	});

	it("carries a person's caption (caption.updated) with the body its webhook carries, in the key's scope only", async () => {
		const mine = uniqueKey("caption-mine/");
		const other = uniqueKey("caption-other/");
		const key = await createKey(mine);
		const png = await fixture("small.png");
		await Promise.all([env.BUCKET.put(`${mine}a.png`, png), env.BUCKET.put(`${other}b.png`, png)]);
		const scoped = await open("?types=caption.updated", { token: key.token });
		const put = (objectKey: string, text: string) =>
			call("PUT", `/v1/captions/${encodeURIComponent(objectKey)}`, { json: { text } });
		expect((await put(`${other}b.png`, "not yours")).status).toBe(200);
		expect((await put(`${mine}a.png`, "a red square")).status).toBe(200);
		const event = await scoped.nextEvent(5_000);
		expect(event.event).toBe("caption.updated");
		expect(JSON.parse(event.data)).toMatchObject({
			type: "caption.updated",
			data: { key: `${mine}a.png`, text: "a red square", source: "human", job_id: null, versions: 1 },
		});
		expect(await scoped.drain(300)).toEqual([]);
		await scoped.close();
	});

	it("resumes after Last-Event-ID (or ?after=) with every missed event, then live, none twice", async () => {
		const prefix = uniqueKey("resume/");
		const query = `?prefix=${encodeURIComponent(prefix)}`;
		const first = await open(query);
		const a = await finish(`${prefix}a.png`, "succeeded");
		const seen = await first.nextEvent();
		expect(jobEvent(seen.data).data.id).toBe(a.id);
		await first.close();
		// Missed while disconnected:
		const b = await finish(`${prefix}b.png`, "failed");
		const c = await finish(`${prefix}c.png`, "succeeded");
		const resumed = await open(query, { headers: { "last-event-id": seen.id ?? "" } });
		const viaQuery = await open(`${query}&after=${seen.id}`);
		const d = await finish(`${prefix}d.png`, "succeeded");
		const expected = [b.id, c.id, d.id];
		expect((await resumed.drain(1500)).map((e) => jobEvent(e.data).data.id)).toEqual(expected);
		expect((await viaQuery.drain(300)).map((e) => jobEvent(e.data).data.id)).toEqual(expected);
		// The header wins over ?after= (EventSource sends the newest id in the header on reconnect).
		const both = await open(`${query}&after=0`, { headers: { "last-event-id": seen.id ?? "" } });
		expect((await both.drain(1000)).map((e) => jobEvent(e.data).data.id)).toEqual(expected);
		await Promise.all([resumed.close(), viaQuery.close(), both.close()]);
	});

	it("answers 400 for an id it never sent and an unknown type, 401 without a token", async () => {
		const badId = await call("GET", "/v1/events?after=evt_123");
		expect(badId.status).toBe(400);
		expect(await invalidFields(badId)).toEqual(["after"]);
		const badHeader = await call("GET", "/v1/events", { headers: { "last-event-id": "x" } });
		expect(await invalidFields(badHeader)).toEqual(["Last-Event-ID"]);
		const badType = await call("GET", "/v1/events?types=job.succeeded,job.exploded");
		expect(badType.status).toBe(400);
		expect((await errorOf(badType)).message).toContain("job.exploded");
		expect((await call("GET", "/v1/events", { token: null })).status).toBe(401);
	});

	it("answers 400 for an id above the newest event's, which no stream sent (the stream would skip to it in silence)", async () => {
		const newest = await headPosition(env.DB);
		const ahead = eventIdOf(newest + 1_000_000);
		const header = await call("GET", "/v1/events", { headers: { "last-event-id": ahead } });
		expect(header.status).toBe(400);
		expect(await invalidFields(header)).toEqual(["Last-Event-ID"]);
		const query = await call("GET", `/v1/events?after=${ahead}`);
		expect(query.status).toBe(400);
		expect(await invalidFields(query)).toEqual(["after"]);
		// The newest id itself resumes: the stream opens and sends what comes after it.
		const prefix = uniqueKey("newest/");
		const stream = await open(`?prefix=${encodeURIComponent(prefix)}`, {
			headers: { "last-event-id": eventIdOf(newest) },
		});
		const job = await finish(`${prefix}a.png`, "succeeded");
		expect(jobEvent((await stream.nextEvent()).data).data.id).toBe(job.id);
		await stream.close();
	});
});

describe.concurrent("stream tokens (POST /v1/events/tokens)", () => {
	const token = async (apiToken: string, body?: unknown) => {
		const res = await call("POST", "/v1/events/tokens", { token: apiToken, ...(body ? { json: body } : {}) });
		expect(res.status).toBe(201);
		return parsed(res, StreamToken);
	};

	it("opens the stream in the URL with the scope of the key that made it, and nothing else", async () => {
		const mine = uniqueKey("token-mine/");
		const key = await createKey(mine);
		const made = await token(key.token);
		expect(made.token).toMatch(/^rcs_/);
		expect(made.prefix).toBe(mine);
		expect(Date.parse(made.expires_at) - Date.now()).toBeGreaterThan(290_000);
		const stream = await open(`?token=${made.token}`, { token: null });
		await finish(`${uniqueKey("token-other/")}x.png`, "succeeded");
		const own = await finish(`${mine}y.png`, "succeeded");
		expect((await stream.drain(1500)).map((e) => jobEvent(e.data).data.id)).toEqual([own.id]);
		await stream.close();
		// Single-purpose: not a bearer token for the rest of the API, nor a URL token elsewhere.
		expect((await call("GET", "/v1/jobs", { token: made.token })).status).toBe(401);
		expect((await call("GET", `/v1/jobs?token=${made.token}`, { token: null })).status).toBe(401);
		// An API key is never taken from a URL.
		expect((await call("GET", `/v1/events?token=${key.token}`, { token: null })).status).toBe(401);
		expect((await call("GET", `/v1/events?token=${ADMIN}`, { token: null })).status).toBe(401);
	});

	it("expires, and stops working when its key is revoked", async () => {
		const key = await createKey(uniqueKey("token-expiry/"));
		const short = await token(key.token, { ttl_seconds: 1 });
		const long = await token(key.token, { ttl_seconds: 600 });
		await new Promise((resolve) => setTimeout(resolve, 1500));
		const expired = await call("GET", `/v1/events?token=${short.token}`, { token: null });
		expect(expired.status).toBe(401);
		expect((await errorOf(expired)).code).toBe("unauthorized");
		const stream = await open(`?token=${long.token}`, { token: null });
		await stream.close();
		await revokeKey(key.id);
		expect((await call("GET", `/v1/events?token=${long.token}`, { token: null })).status).toBe(401);
	});

	it("ends the key's open streams when it is revoked, its token's too; other keys' streams go on", async () => {
		const revoked = await createKey(uniqueKey("revoked-open/"));
		const other = uniqueKey("still-open/");
		const kept = await createKey(other);
		const direct = await open("", { token: revoked.token });
		const viaToken = await open(`?token=${(await token(revoked.token, { ttl_seconds: 600 })).token}`, { token: null });
		const untouched = await open("", { token: kept.token });
		await revokeKey(revoked.id);
		/** Reads frames (keep-alive comments) until the stream ends, for at most 5 s. */
		const ending = async (stream: Awaited<ReturnType<typeof open>>) => {
			const deadline = Date.now() + 5_000;
			while (Date.now() < deadline) {
				try {
					await stream.next(Math.max(1, deadline - Date.now()));
				} catch (err) {
					return (err as Error).message;
				}
			}
			return "still open after 5 s";
		};
		expect(await Promise.all([ending(direct), ending(viaToken)])).toEqual(["the stream ended", "the stream ended"]);
		const job = await finish(`${other}a.png`, "succeeded");
		expect(jobEvent((await untouched.nextEvent()).data).data.id).toBe(job.id);
		await untouched.close();
	});

	it("refuses a token whose claim was altered", async () => {
		const key = await createKey(uniqueKey("token-forged/"));
		const made = await token(key.token);
		const [body, mac] = made.token.slice(4).split(".");
		const claim = JSON.parse(new TextDecoder().decode(hex(body ?? "")));
		const forged = new TextEncoder().encode(JSON.stringify({ ...claim, p: null }));
		const forgedToken = `rcs_${[...forged].map((b) => b.toString(16).padStart(2, "0")).join("")}.${mac}`;
		expect((await call("GET", `/v1/events?token=${forgedToken}`, { token: null })).status).toBe(401);
		const ttl = await call("POST", "/v1/events/tokens", { json: { ttl_seconds: 7200 } });
		expect(await invalidFields(ttl)).toEqual(["ttl_seconds"]);
	});
});

describe("keep-alive", () => {
	it("is every 15 s unless EVENTS_KEEPALIVE_SECONDS says otherwise", () => {
		expect(KeepAliveSeconds.parse(undefined)).toBe(15);
		expect(KeepAliveSeconds.parse("2.5")).toBe(2.5);
		expect(KeepAliveSeconds.safeParse("0").success).toBe(false);
		expect(KeepAliveSeconds.safeParse("soon").success).toBe(false);
	});

	it("writes a comment every EVENTS_KEEPALIVE_SECONDS (1 s in the test pool) on an idle stream", async () => {
		expect(env.EVENTS_KEEPALIVE_SECONDS).toBe("1");
		const stream = await open(`?prefix=${encodeURIComponent(uniqueKey("idle/"))}`);
		// Two in a row: a comment that comes again, not once. Each within the interval and a slack for
		// a loaded machine, far below the 15 s default.
		for (let i = 0; i < 2; i++) {
			const started = Date.now();
			expect(await stream.next(10_000)).toEqual({ kind: "comment", text: "keep-alive" });
			expect(Date.now() - started).toBeLessThan(5_000);
		}
		await stream.close();
	});
});

const hex = (text: string) => new Uint8Array((text.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)));
