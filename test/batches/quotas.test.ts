/**
 * Batches count against the API key that made them: their jobs carry its key_id and count toward
 * MAX_JOBS_IN_FLIGHT; a batch never puts more than that cap in flight (a page at the cap is held
 * and its message sent again with a delay, so the batch goes on as jobs finish, without anyone's
 * help); a key has at most MAX_OPEN_BATCHES_PER_KEY batches listing or running. The test pool's
 * quotas are out of the way, so these run the real Workers with low ones, the way a deployment with
 * those settings would; the queue is played by the test where a low cap must reach the consumer.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { getBatchRow } from "../../shared/batches/read";
import { Batch } from "../../shared/batches/schema";
import { emulator } from "../../shared/models/emulator";
import { BatchPageMessage, batchPage } from "../../shared/queue/batch-listing";
import { planPage } from "../../workers/consumer/batch-lister";
import { commitPage } from "../../workers/consumer/batch-pages";
import { readSettings } from "../../workers/consumer/config";
import consumer from "../../workers/consumer/index";
import status from "../../workers/status/index";
import { call, createKey, errorOf, parsed } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { runConsumer, runQueueHandler } from "../support/queue";
import { counts, deliverPage, getBatch, jobsOfBatch, putObjects, unsentBatch } from "./support";

beforeEach(() => emulator.reset());

/** The status Worker with some vars or bindings changed. */
function callWith(vars: Partial<TestEnv>, method: string, path: string, token: string, body?: BodyInit) {
	const headers = new Headers({ authorization: `Bearer ${token}` });
	if (typeof body === "string") headers.set("content-type", "application/json");
	if (body instanceof Uint8Array) headers.set("content-length", String(body.byteLength));
	const request = new Request(`https://status.test${path}`, { method, headers, body });
	return status.fetch(request, { ...env, ...vars }, createExecutionContext());
}

/**
 * A real queue nothing consumes (HELD_MESSAGES), noting each message sent to it and its delay, so
 * that the test can deliver them itself as the Queues runtime would.
 */
function recordingQueue() {
	const sent: { body: unknown; delaySeconds: number }[] = [];
	const queue: Queue = {
		metrics: () => env.HELD_MESSAGES.metrics(),
		send(body, options) {
			sent.push({ body, delaySeconds: options?.delaySeconds ?? 0 });
			return env.HELD_MESSAGES.send(body, options);
		},
		sendBatch(messages, options) {
			const list = [...messages];
			for (const m of list) sent.push({ body: m.body, delaySeconds: m.delaySeconds ?? options?.delaySeconds ?? 0 });
			return env.HELD_MESSAGES.sendBatch(list, options);
		},
	};
	return { queue, take: () => sent.splice(0) };
}

const Count = z.object({ n: z.number() });

/** The batch's jobs queued or processing, counted over the rows. */
async function inFlight(batchId: string): Promise<number> {
	const row = await env.DB.prepare(
		"SELECT count(*) AS n FROM jobs WHERE batch_id = ? AND status IN ('queued', 'processing')",
	)
		.bind(batchId)
		.first();
	return Count.parse(row).n;
}

describe("a batch counts against the key that made it", () => {
	it("its jobs carry the key's key_id and take the key's places in flight: an upload past the cap is refused", async () => {
		const prefix = uniqueKey("quota-keyid/");
		const key = await createKey(prefix);
		await putObjects([`${prefix}a.jpg`, `${prefix}b.jpg`, `${prefix}c.jpg`]);
		const batch = await unsentBatch(prefix, { keyId: key.id, skipCaptioned: false });
		await deliverPage(batch.id, 0, { holdCaptions: true });

		const jobs = await jobsOfBatch(batch.id);
		expect(jobs.map((j) => [j.status, j.key_id])).toEqual([
			["queued", key.id],
			["queued", key.id],
			["queued", key.id],
		]);
		const png = await fixture("small.png");
		// Production mode: nothing enqueues the upload's notification.
		const upload = (cap: number) =>
			callWith(
				{ MAX_JOBS_IN_FLIGHT: String(cap), DEPLOY_MODE: "production" },
				"PUT",
				`/v1/images/${prefix}d.png`,
				key.token,
				png,
			);
		const refused = await upload(3);
		expect(refused.status).toBe(429);
		expect((await errorOf(refused)).code).toBe("too_many_jobs_in_flight");
		// One more place, and the upload goes through.
		const allowed = await upload(4);
		expect(allowed.status).toBe(202);
	});

	it("a batch bigger than the cap waits at the cap and finishes by itself: every job done, never more than the cap in flight", async () => {
		// Below the test pool's page size (3): a page lists only what fits, never waits for a full page's room.
		const cap = 2;
		const prefix = uniqueKey("quota-cap/");
		const key = await createKey(prefix);
		const keys = Array.from({ length: 8 }, (_, i) => `${prefix}img-${i}.jpg`);
		await putObjects(keys);
		const batch = await unsentBatch(prefix, { keyId: key.id, skipCaptioned: false });
		const pages = recordingQueue();
		const captions = recordingQueue();
		const vars = {
			MAX_JOBS_IN_FLIGHT: String(cap),
			BATCH_LISTING: pages.queue,
			// A batch's captions go to the batch lane.
			CAPTION_BATCH_JOBS: captions.queue,
		};

		// The test plays the queues: each round delivers the page messages sent so far, then the ones
		// those sent, then one caption message (one job finishes). Nothing else wakes the batch.
		let pageMessages = [batchPage(batch.id, 0)];
		const captionMessages: unknown[] = [];
		const holds: { page: number; delaySeconds: number }[] = [];
		let peak = 0;
		for (let round = 0; round < 60 && (await getBatch(batch.id)).completed_at === null; round++) {
			for (let step = 0; step < 2; step++) {
				for (const body of pageMessages) {
					const run = await runQueueHandler(consumer.queue, "batch-listing", [body], { env: vars });
					expect(run.result.explicitAcks).toEqual(run.ids);
				}
				const delivered = pageMessages.map((m) => m.page);
				pageMessages = [];
				for (const sent of pages.take()) {
					const message = BatchPageMessage.parse(sent.body);
					if (delivered.includes(message.page)) holds.push({ page: message.page, delaySeconds: sent.delaySeconds });
					pageMessages.push(message);
				}
				captionMessages.push(...captions.take().map((m) => m.body));
				peak = Math.max(peak, await inFlight(batch.id));
			}
			const next = captionMessages.shift();
			if (next !== undefined) await runConsumer([next], { env: vars });
			peak = Math.max(peak, await inFlight(batch.id));
		}

		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed", completed_at: expect.any(String) });
		expect(done.counts).toEqual(counts({ succeeded: 8 }));
		const jobs = await jobsOfBatch(batch.id);
		expect(jobs.map((j) => j.key)).toEqual(keys);
		expect(jobs.every((j) => j.status === "succeeded" && j.key_id === key.id)).toBe(true);
		expect(peak).toBe(cap);
		// It was held at the cap: the same page's message went out again, delayed, instead of failing.
		expect(holds.length).toBeGreaterThan(0);
		expect(holds.every((h) => h.delaySeconds > 0)).toBe(true);
	});

	it("a page that would put the key over its cap commits nothing (two listers at once): it is held, not lost", async () => {
		const prefix = uniqueKey("quota-race/");
		const key = await createKey(prefix);
		await putObjects([`${prefix}a.jpg`, `${prefix}b.jpg`, `${prefix}c.jpg`]);
		const first = await unsentBatch(`${prefix}a`, { keyId: key.id, skipCaptioned: false });
		const second = await unsentBatch(prefix, { keyId: key.id, skipCaptioned: false });
		const settings = readSettings(env);
		const rowOf = async (id: string) => {
			const row = await getBatchRow(env.DB, id);
			if (!row) throw new Error(`no batch ${id}`);
			return row;
		};
		// The second batch planned its page (3 objects) when the key had room for 3; then the first
		// batch's page took one place.
		const plan = await planPage(env, await rowOf(second.id), settings, 3);
		await deliverPage(first.id, 0, { holdCaptions: true });
		expect(await inFlight(first.id)).toBe(1);
		const held = await commitPage(env.DB, await rowOf(second.id), 0, plan, Date.now(), 3);
		expect(held).toEqual({ kind: "held" });
		expect(await jobsOfBatch(second.id)).toEqual([]);
		expect(await getBatchRow(env.DB, second.id)).toMatchObject({ status: "listing", pages_listed: 0, total: 0 });
		// With room for all of it, the same page commits.
		const committed = await commitPage(env.DB, await rowOf(second.id), 0, plan, Date.now(), 4);
		expect(committed.kind).toBe("committed");
		expect(await inFlight(second.id)).toBe(3);
	});
});

describe("open batches per key", () => {
	// Page messages go to a queue nothing consumes, so the batches stay open (listing).
	const vars = { MAX_OPEN_BATCHES_PER_KEY: "2", BATCH_LISTING: env.HELD_MESSAGES };
	const create = (token: string, prefix: string) =>
		callWith(vars, "POST", "/v1/batches", token, JSON.stringify({ prefix }));

	it("a key may have MAX_OPEN_BATCHES_PER_KEY batches listing or running; one more is 429 too_many_batches", async () => {
		const prefix = uniqueKey("quota-open/");
		const key = await createKey(prefix);
		const made = [await create(key.token, `${prefix}1/`), await create(key.token, `${prefix}2/`)];
		expect(made.map((r) => r.status)).toEqual([202, 202]);

		const refused = await create(key.token, `${prefix}3/`);
		expect(refused.status).toBe(429);
		expect(refused.headers.get("retry-after")).toBe("30");
		expect(await errorOf(refused)).toEqual({
			code: "too_many_batches",
			message: "This API key already has 2 batches listing or running; the limit is 2",
			details: { limit: 2, retry_after_seconds: 30 },
		});
		const { n } = Count.parse(
			await env.DB.prepare("SELECT count(*) AS n FROM batches WHERE key_id = ?").bind(key.id).first(),
		);
		expect(n).toBe(2);

		// Another key has its own count; the admin token has none.
		const other = await createKey(prefix);
		expect((await create(other.token, `${prefix}4/`)).status).toBe(202);
		expect((await create(env.ADMIN_TOKEN, `${prefix}5/`)).status).toBe(202);

		// A cancelled batch is no longer open: its place is free again.
		const first = await parsed(made[0] as Response, Batch);
		expect((await call("POST", `/v1/batches/${first.id}/cancel`, { token: key.token })).status).toBe(200);
		expect((await create(key.token, `${prefix}6/`)).status).toBe(202);
	});
});
