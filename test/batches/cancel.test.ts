/**
 * Cancelling a batch mid-run, stepped by hand: its queued jobs end `cancelled` (no model call, no
 * job webhook), a running job finishes, and `batch.cancelled` goes out once, when nothing is left
 * running, to subscriptions and the batch's callback URL, verified with `standardwebhooks`.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { Batch } from "../../shared/batches/schema";
import { getJobRow } from "../../shared/jobs/store";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { sweepWebhooks } from "../../workers/webhooks/sweeper";
import { call, createKey, errorOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { until } from "../support/poll";
import { runConsumer } from "../support/queue";
import { deliveriesOf, hook, subscribe, verifiedBatchEvent } from "../webhooks/support";
import {
	batchEventDeliveries,
	countedFromRows,
	counts,
	createBatch,
	deliverPage,
	getBatch,
	jobsOfBatch,
	putObjects,
	settled,
	unsentBatch,
	waitForBatch,
} from "./support";

beforeEach(() => emulator.reset());

/** A caption message for a job, delivered with the page's caption messages held back. */
const captionJob = (jobId: string) =>
	runConsumer([{ kind: "caption-job", job_id: jobId }], { env: { CAPTION_JOBS: env.HELD_MESSAGES } });

async function eventsOfJob(jobId: string): Promise<number> {
	return (
		(await env.DB.prepare(`SELECT count(*) AS n FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
			.bind(jobId)
			.first<number>("n")) ?? 0
	);
}

describe("POST /v1/batches/{id}/cancel", () => {
	it("cancels queued jobs, lets the running one finish, and sends batch.cancelled once when it has", async () => {
		const prefix = uniqueKey("cancel/");
		const keys = Array.from({ length: 5 }, (_, i) => `${prefix}${i}.jpg`);
		await putObjects(keys);
		const subscriber = hook("batch-sub");
		const sub = await subscribe({ url: subscriber.url, prefix, events: ["batch.completed", "batch.cancelled"] });
		const jobsOnly = hook("jobs-only");
		await subscribe({ url: jobsOnly.url, prefix, events: ["job.succeeded", "job.failed"] });
		const callback = hook("batch-callback");

		// Page 0's three jobs are captioned through the real queue; page 1's two are held back.
		const batch = await unsentBatch(prefix, { callbackUrl: callback.url });
		await deliverPage(batch.id, 0);
		await deliverPage(batch.id, 1, { holdCaptions: true });
		await until("page 0's jobs did not finish", async () =>
			(await getBatch(batch.id)).counts.succeeded === 3 ? true : null,
		);
		const queued = (await jobsOfBatch(batch.id)).filter((j) => j.status === "queued");
		expect(queued.map((j) => j.key)).toEqual(keys.slice(3));
		const [running, cancelledLater] = queued as [(typeof queued)[number], (typeof queued)[number]];

		// One job is mid-caption (a slow model) when the cancel comes.
		emulator.overrides = { latencyMs: 1500 };
		const inFlight = captionJob(running.id);
		await until("the job did not start", async () =>
			(await getJobRow(env.DB, running.id))?.status === "processing" ? true : null,
		);
		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		expect(res.status).toBe(200);
		const cancelled = await parsed(res, Batch);
		expect(cancelled).toMatchObject({ id: batch.id, status: "cancelled", completed_at: null });
		expect(cancelled.counts).toEqual(counts({ processing: 1, succeeded: 3, cancelled: 1 }));
		expect(cancelled.counts).toEqual(await countedFromRows(batch.id));

		// The cancelled job's message is still in the queue: it is acknowledged without a model call.
		const callsBefore = emulator.callsTo();
		const late = await captionJob(cancelledLater.id);
		expect(late.result.explicitAcks).toEqual(late.ids);
		expect(emulator.callsTo()).toBe(callsBefore);
		expect(await getJobRow(env.DB, cancelledLater.id)).toMatchObject({ status: "cancelled", caption: null });
		expect(await eventsOfJob(cancelledLater.id)).toBe(0);
		// Cancelling again answers the same batch; a job is still running, so there is no event yet.
		const again = await call("POST", `/v1/batches/${batch.id}/cancel`);
		expect(again.status).toBe(200);
		expect(
			await env.DB.prepare("SELECT id FROM webhook_events WHERE batch_id = ? AND type <> 'batch.progress'")
				.bind(batch.id)
				.first(),
		).toBeNull();

		await inFlight;
		const done = await waitForBatch(batch.id, settled);
		expect(done).toMatchObject({ status: "cancelled" });
		expect(done.counts).toEqual(counts({ succeeded: 4, cancelled: 1 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));

		const [delivery] = await subscriber.waitFor(1);
		const event = verifiedBatchEvent(sub.secret, delivery!);
		expect(event).toMatchObject({ type: "batch.cancelled", data: { id: batch.id, status: "cancelled" } });
		expect(event.data.counts).toEqual(done.counts);
		const [toCallback] = await callback.waitFor(1);
		expect(verifiedBatchEvent(env.WEBHOOK_SECRET, toCallback!)).toMatchObject({
			type: "batch.cancelled",
			data: { id: batch.id },
		});
		// Exactly once per endpoint: one delivery each, delivered at its first attempt; the job-only
		// subscription got job events (4 succeeded), no batch event.
		const deliveries = await batchEventDeliveries(batch.id);
		expect(deliveries.map((d) => [d.subscription_id, d.status, d.attempts]).sort()).toEqual(
			[
				[sub.id, "succeeded", 1],
				[null, "succeeded", 1],
			].sort(),
		);
		expect(await subscriber.received()).toHaveLength(1);
		expect(await callback.received()).toHaveLength(1);
		const jobEvents = await jobsOnly.waitFor(4);
		expect(jobEvents.map((r) => JSON.parse(r.body).type)).toEqual(Array(4).fill("job.succeeded"));
	});

	it("a batch cancelled while listing stops listing; with nothing running it is settled at once", async () => {
		const prefix = uniqueKey("cancel-listing/");
		await putObjects(Array.from({ length: 7 }, (_, i) => `${prefix}${i}.jpg`));
		const callback = hook("cancel-listing");
		const batch = await unsentBatch(prefix, { callbackUrl: callback.url });
		await deliverPage(batch.id, 0, { holdCaptions: true });

		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		const done = await parsed(res, Batch);
		expect(done).toMatchObject({ status: "cancelled", listed_at: null, completed_at: expect.any(String) });
		expect(done.counts).toEqual(counts({ cancelled: 3 }));
		// Page 1 arrives after the cancel: it lists nothing.
		await deliverPage(batch.id, 1);
		expect(await getBatch(batch.id)).toEqual(done);
		expect(done.counts).toEqual(await countedFromRows(batch.id));
		const [event] = await callback.waitFor(1);
		expect(verifiedBatchEvent(env.WEBHOOK_SECRET, event!).data.counts).toEqual(done.counts);
	});

	it("a completed batch cannot be cancelled (409); an unknown one is 404", async () => {
		const prefix = uniqueKey("cancel-done/");
		await putObjects([`${prefix}a.jpg`]);
		const batch = await createBatch({ prefix });
		await waitForBatch(batch.id, settled);
		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		expect(res.status).toBe(409);
		expect((await errorOf(res)).code).toBe("batch_completed");
		expect((await call("POST", "/v1/batches/bat_nope/cancel")).status).toBe(404);
	});

	it("only the batch's creator or the admin may cancel it; another key gets 404 and the batch goes on", async () => {
		const prefix = uniqueKey("cancel-owner/");
		const creator = await createKey(prefix);
		const neighbour = await createKey(prefix);
		const unscoped = await createKey();
		const byKey = await unsentBatch(prefix, { keyId: creator.id });
		const byAdmin = await unsentBatch(prefix);

		for (const [batch, token] of [
			[byKey, neighbour.token],
			[byKey, unscoped.token],
			[byAdmin, creator.token],
		] as const) {
			const res = await call("POST", `/v1/batches/${batch.id}/cancel`, { token });
			expect(res.status).toBe(404);
			expect((await errorOf(res)).code).toBe("not_found");
			expect((await getBatch(batch.id)).status).toBe("listing");
		}
		// Reading it is a matter of scope: the neighbour still sees the batch it may not cancel.
		expect((await call("GET", `/v1/batches/${byKey.id}`, { token: neighbour.token })).status).toBe(200);

		const byCreator = await call("POST", `/v1/batches/${byKey.id}/cancel`, { token: creator.token });
		expect(byCreator.status).toBe(200);
		expect((await parsed(byCreator, Batch)).status).toBe("cancelled");
		const byTheAdmin = await call("POST", `/v1/batches/${byAdmin.id}/cancel`);
		expect(byTheAdmin.status).toBe(200);
		expect((await getBatch(byAdmin.id)).status).toBe("cancelled");
	});
});

describe("batch.completed", () => {
	it("goes once to each matching subscription and to the callback URL, not to others", async () => {
		const prefix = uniqueKey("bwh/");
		await putObjects([`${prefix}a/1.jpg`, `${prefix}a/2.jpg`, `${prefix}b/3.jpg`]);
		const inside = hook("inside");
		const insideSub = await subscribe({ url: inside.url, prefix, events: ["batch.completed"] });
		const narrower = hook("narrower");
		await subscribe({ url: narrower.url, prefix: `${prefix}a/`, events: ["batch.completed"] });
		const cancelledOnly = hook("cancelled-only");
		await subscribe({ url: cancelledOnly.url, prefix, events: ["batch.cancelled"] });
		const callback = hook("completed-callback");

		const batch = await createBatch({ prefix, callback_url: callback.url, metadata: { run: "7" } });
		const done = await waitForBatch(batch.id, settled);
		const [delivery] = await inside.waitFor(1);
		const event = verifiedBatchEvent(insideSub.secret, delivery!);
		expect(event.type).toBe("batch.completed");
		expect(event.data).toEqual(done);
		expect(verifiedBatchEvent(env.WEBHOOK_SECRET, (await callback.waitFor(1))[0]!).data.id).toBe(batch.id);
		// One delivery to the matching subscription and one to the callback URL; the batch covers more
		// than `a/`, so a subscription to `a/` gets none, nor does one that asked for batch.cancelled only.
		const deliveries = await batchEventDeliveries(batch.id);
		expect(deliveries.map((d) => [d.subscription_id, d.target, d.attempts]).sort()).toEqual(
			[
				[insideSub.id, insideSub.id, 1],
				[null, "callback", 1],
			].sort(),
		);
		expect(await narrower.received()).toHaveLength(0);
		expect(await cancelledOnly.received()).toHaveLength(0);
		expect(await inside.received()).toHaveLength(1);
		expect(await callback.received()).toHaveLength(1);
		// The delivery log names the batch, not a job.
		const [logged] = await deliveriesOf(insideSub.id);
		expect(logged).toMatchObject({
			event_type: "batch.completed",
			batch_id: batch.id,
			job_id: null,
			status: "succeeded",
		});
	});

	it("an event whose queue message was lost is sent by the webhooks Worker's cron", async () => {
		const prefix = uniqueKey("bwh-lost/");
		const receiver = hook("lost-batch-event");
		const sub = await subscribe({ url: receiver.url, prefix, events: ["batch.completed"] });
		// An empty batch settles on its only page; its event's message goes to a queue nobody reads.
		const batch = await unsentBatch(prefix);
		await deliverPage(batch.id, 0, { env: { WEBHOOK_DELIVERIES: env.HELD_MESSAGES } });
		const done = await getBatch(batch.id);
		expect(done.status).toBe("completed");
		expect(await receiver.received()).toHaveLength(0);

		const settledAt = Date.parse(done.completed_at ?? "");
		const swept = await sweepWebhooks(env, settledAt + 5 * 60_000 + 1);
		expect(swept.events).toBeGreaterThanOrEqual(1);
		const [delivery] = await receiver.waitFor(1);
		expect(verifiedBatchEvent(sub.secret, delivery!).data).toEqual(done);
	});
});
