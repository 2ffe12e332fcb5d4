/**
 * Plan before run: a dry run lists and counts like any batch but makes no job (so calls no model),
 * ends `planned` with an estimate, and `start` makes exactly `total - skipped` jobs.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { progressBody } from "../../shared/batches/progress-events";
import { getBatchRow } from "../../shared/batches/read";
import { Batch } from "../../shared/batches/schema";
import { RateLimitsSetting } from "../../shared/models/rate-limits";
import { parseModelChain } from "../../shared/models/registry";
import { BatchProgressWebhookPayload } from "../../shared/webhooks/schema";
import { Stats } from "../../workers/status/jobs/stats";
import { call, createKey, errorOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { MISTRAL, MOONDREAM } from "../support/models";
import { jobsForKey } from "../support/queue";
import { sseReader } from "../support/sse";
import { hook, subscribe, verifiedBatchEvent } from "../webhooks/support";
import {
	captionAll,
	createBatch,
	deliverPage,
	getBatch,
	jobsOfBatch,
	putObjects,
	settled,
	waitForBatch,
} from "./support";

/** Any batch event's body on the stream: its type and the Batch JSON. */
const BatchEventBody = z.object({ type: z.string(), data: Batch });

/** Opens `GET /v1/events` and waits for the hub to register it. */
async function open(path: string) {
	const res = await call("GET", path);
	expect(res.status).toBe(200);
	const reader = sseReader(res);
	expect(await reader.next()).toEqual({ kind: "comment", text: "connected" });
	return reader;
}

describe("dry_run", () => {
	it("plans with no job, estimates, and start makes exactly total - skipped jobs", async () => {
		const prefix = uniqueKey("dry-run/");
		const keys = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"].map((k) => `${prefix}${k}`);
		await putObjects(keys);
		await captionAll(keys.slice(0, 2), MOONDREAM);

		const created = await createBatch({ prefix, recaption: { unless_model: [MOONDREAM] }, dry_run: true });
		const planned = await waitForBatch(created.id, (b) => b.status === "planned");
		expect(planned.counts).toMatchObject({ total: 5, skipped: 2, queued: 0, succeeded: 0 });
		// Nothing is under way: no rate, and no time left to tell (not 0 s, which says it is done).
		expect({ rate: planned.rate_per_minute, eta: planned.eta_seconds }).toEqual({ rate: null, eta: null });
		// The chain starts with moondream (wrangler.jsonc): 3 calls × (750 × $0.30 + 100 × $1.00) / 1e6;
		// 3 / 720 per minute (Image-to-Text), to the tenth above.
		expect(planned.estimate).toEqual({ model: MOONDREAM, model_calls: 3, minutes_at_rate_limit: 0.1, usd: 0.000975 });
		// No job for the batch, and none more for its objects than the two captions made above.
		expect(await jobsOfBatch(created.id)).toEqual([]);
		const jobsPerKey = await Promise.all(keys.map(async (k) => (await jobsForKey(k)).length));
		expect(jobsPerKey).toEqual([1, 1, 0, 0, 0]);
		// Still planned a while later: nothing runs it but start.
		expect((await getBatch(created.id)).status).toBe("planned");

		const start = await call("POST", `/v1/batches/${created.id}/start`);
		expect(start.status).toBe(202);
		// The plan's estimate stays, to compare with the usage of the jobs it makes.
		expect(await parsed(start, Batch)).toMatchObject({ status: "listing", estimate: planned.estimate });
		const done = await waitForBatch(created.id, settled);
		expect(done.counts).toMatchObject({ total: 5, skipped: 2, succeeded: 3, failed: 0 });
		expect((await jobsOfBatch(created.id)).map((j) => j.key)).toEqual(keys.slice(2));

		const again = await call("POST", `/v1/batches/${created.id}/start`);
		expect(again.status).toBe(409);
		expect((await errorOf(again)).code).toBe("batch_not_planned");
	});

	it("a plan in a language the chain's first model cannot write is priced on the first that can", async () => {
		const prefix = uniqueKey("dry-run-de/");
		await putObjects(["a.jpg", "b.jpg", "c.jpg"].map((k) => `${prefix}${k}`));
		const created = await createBatch({ prefix, language: "de", dry_run: true });
		const planned = await waitForBatch(created.id, (b) => b.status === "planned");
		// Mistral Small 3.1 is the chain's first that writes German: 3 × (750 × $0.351 + 100 × $0.555) / 1e6,
		// at Text Generation's 300 a minute.
		expect(planned.estimate).toEqual({ model: MISTRAL, model_calls: 3, minutes_at_rate_limit: 0.1, usd: 0.000956 });
	});

	it("a started plan's events carry its estimate as GET /v1/batches/{id} does: webhook, stream and batch.progress", async () => {
		const prefix = uniqueKey("dry-run-events/");
		await putObjects(["a.jpg", "b.jpg", "c.jpg"].map((k) => `${prefix}${k}`));
		const receiver = hook("dry-run-events");
		const sub = await subscribe({ url: receiver.url, prefix, events: ["batch.completed"] });
		const created = await createBatch({ prefix, dry_run: true });
		await waitForBatch(created.id, (b) => b.status === "planned");
		expect((await call("POST", `/v1/batches/${created.id}/start`)).status).toBe(202);
		await waitForBatch(created.id, settled);
		const { estimate } = await getBatch(created.id);
		expect(estimate).toMatchObject({ model: MOONDREAM, model_calls: 3 });

		// The batch.completed webhook's body is the Batch JSON, estimate included.
		const [delivery] = await receiver.waitFor(1);
		if (!delivery) throw new Error("no batch.completed delivery");
		const completed = verifiedBatchEvent(sub.secret, delivery);
		expect(completed).toMatchObject({ type: "batch.completed", data: { id: created.id } });
		expect(completed.data.estimate).toEqual(estimate);

		// The stream replays the batch's events (a batch.progress, if one was recorded, then batch.completed).
		const stream = await open(`/v1/events?batch_id=${created.id}&types=batch.progress,batch.completed&after=0`);
		const seen: z.infer<typeof BatchEventBody>[] = [];
		for (let e = await stream.nextEvent(); ; e = await stream.nextEvent()) {
			seen.push(BatchEventBody.parse(JSON.parse(e.data)));
			if (e.event === "batch.completed") break;
		}
		await stream.close();
		for (const body of seen) expect(body.data.estimate).toEqual(estimate);

		// A batch.progress body, as the webhooks Worker records it while the batch runs.
		const row = await getBatchRow(env.DB, created.id);
		if (!row) throw new Error("no batch row");
		const pace = { chain: parseModelChain(undefined), limits: RateLimitsSetting.parse("off") };
		const progress = BatchProgressWebhookPayload.parse(JSON.parse(await progressBody(env.DB, row, pace)));
		expect(progress.data.estimate).toEqual(estimate);
	});

	it("a started plan still running shows its estimate in GET /v1/stats as GET /v1/batches/{id} does", async () => {
		const prefix = uniqueKey("dry-run-stats/");
		await putObjects(["a.jpg", "b.jpg"].map((k) => `${prefix}${k}`));
		const key = await createKey(prefix);
		const created = await createBatch({ prefix, dry_run: true }, key.token);
		await waitForBatch(created.id, (b) => b.status === "planned");
		// Started with its pages held, then listed with its caption messages held: it stays running.
		const start = await call("POST", `/v1/batches/${created.id}/start`, {
			token: key.token,
			env: { BATCH_LISTING: env.HELD_MESSAGES },
		});
		expect(start.status).toBe(202);
		await deliverPage(created.id, 0, { holdCaptions: true });
		const running = await getBatch(created.id);
		expect(running).toMatchObject({ status: "running", estimate: { model: MOONDREAM, model_calls: 2 } });

		const stats = await parsed(await call("GET", "/v1/stats", { token: key.token }), Stats);
		expect(stats.batches.map((b) => [b.id, b.estimate])).toEqual([[created.id, running.estimate]]);
	});

	it("a cancelled plan settles with counts that add up (all 0: it made no job), its estimate kept", async () => {
		const prefix = uniqueKey("dry-run-cancel/");
		await putObjects(["a.jpg", "b.jpg", "c.jpg"].map((k) => `${prefix}${k}`));
		const created = await createBatch({ prefix, dry_run: true });
		const planned = await waitForBatch(created.id, (b) => b.status === "planned");
		expect(planned.counts.total).toBe(3);
		const res = await call("POST", `/v1/batches/${created.id}/cancel`);
		expect(res.status).toBe(200);
		const cancelled = await parsed(res, Batch);
		expect(cancelled).toMatchObject({
			status: "cancelled",
			completed_at: expect.any(String),
			estimate: planned.estimate,
		});
		const { total, ...rest } = cancelled.counts;
		expect(total).toBe(Object.values(rest).reduce((a, b) => a + b, 0));
		expect(total).toBe(0);
		expect(await jobsOfBatch(created.id)).toEqual([]);
	});

	it("start re-checks the skip rules: an object captioned meanwhile is skipped", async () => {
		const prefix = uniqueKey("dry-run-recheck/");
		const keys = ["a.jpg", "b.jpg"].map((k) => `${prefix}${k}`);
		await putObjects(keys);
		const created = await createBatch({ prefix, recaption: { unless_model: [MOONDREAM] }, dry_run: true });
		expect((await waitForBatch(created.id, (b) => b.status === "planned")).counts).toMatchObject({
			total: 2,
			skipped: 0,
		});
		await captionAll([keys[0] ?? ""], MOONDREAM);
		expect((await call("POST", `/v1/batches/${created.id}/start`)).status).toBe(202);
		const done = await waitForBatch(created.id, settled);
		expect(done.counts).toMatchObject({ total: 2, skipped: 1, succeeded: 1 });
	});

	it("only the creating key (or the admin) starts it; another key gets 404", async () => {
		const prefix = uniqueKey("dry-run-scope/");
		await putObjects([`${prefix}a.jpg`]);
		const owner = await createKey(prefix);
		const other = await createKey(prefix);
		const res = await call("POST", "/v1/batches", { token: owner.token, json: { prefix, dry_run: true } });
		const created = await parsed(res, Batch);
		await waitForBatch(created.id, (b) => b.status === "planned");
		expect((await call("POST", `/v1/batches/${created.id}/start`, { token: other.token })).status).toBe(404);
		expect((await call("POST", `/v1/batches/${created.id}/start`, { token: owner.token })).status).toBe(202);
		await waitForBatch(created.id, settled);
	});
});
