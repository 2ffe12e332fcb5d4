/**
 * Which targets an event goes to, and that it goes there once: prefix and event filters, the
 * outbox written with the job's finish, duplicate notifications and consumer retries, duplicate
 * event messages, and the cron that re-sends what was never enqueued.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { parseRows } from "../../shared/d1-rows";
import { finishStatement } from "../../shared/jobs/store";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { finishWithEvent } from "../../shared/webhooks/outbox";
import { EventRow } from "../../shared/webhooks/schema";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import { sweepWebhooks } from "../../workers/webhooks/sweeper";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { resetModels, warmUp } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";
import { deliveriesOf, finishedJob, hook, runWebhooks, subscribe, verified, waitForSettledDelivery } from "./support";

beforeEach(resetModels);

async function eventsOf(jobId: string) {
	return env.DB.prepare(`SELECT * FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
		.bind(jobId)
		.all()
		.then(parseRows(EventRow));
}

describe("fan-out", () => {
	it("a job outside a subscription's prefix makes no delivery for it", async () => {
		const base = uniqueKey("prefix/");
		const inside = await subscribe({ url: hook("inside").url, prefix: `${base}photos/` });
		const outside = await subscribe({ url: hook("outside").url, prefix: `${base}docs/` });
		const { eventId } = await finishedJob(`${base}photos/cat.png`, "succeeded");

		const result = await dispatchEvent(env.DB, eventId);
		expect(result).toEqual({ kind: "dispatched", deliveryIds: [expect.stringMatching(/^msg_/)] });
		expect(await deliveriesOf(inside.id)).toHaveLength(1);
		expect(await deliveriesOf(outside.id)).toHaveLength(0);
	});

	it("a subscription gets only the event types it asked for", async () => {
		const prefix = uniqueKey("filter/");
		const failures = await subscribe({ url: hook("failures").url, prefix, events: ["job.failed"] });
		const successes = await subscribe({ url: hook("successes").url, prefix, events: ["job.succeeded"] });
		const ok = await finishedJob(`${prefix}ok.png`, "succeeded");
		const bad = await finishedJob(`${prefix}bad.png`, "failed");
		await dispatchEvent(env.DB, ok.eventId);
		await dispatchEvent(env.DB, bad.eventId);

		expect((await deliveriesOf(failures.id)).map((d) => [d.job_id, d.event_type])).toEqual([[bad.jobId, "job.failed"]]);
		expect((await deliveriesOf(successes.id)).map((d) => [d.job_id, d.event_type])).toEqual([
			[ok.jobId, "job.succeeded"],
		]);
	});

	it("a finish that lost its lease writes no event; the lease holder's finish writes exactly one", async () => {
		const now = Date.now();
		const row = await insertJob({
			key: uniqueKey("lease/a.png"),
			status: "processing",
			attempts: 2,
			lease_token: "current",
			lease_expires_at: now + 60_000,
			created_at: now,
		});
		const jobId = row.id;
		const outcome = { status: "succeeded" as const, caption: "A caption." };
		// A consumer whose lease expired (another one reclaimed the job) tries to finish it.
		const stale = finishStatement(env.DB, { ...row, lease_token: "expired" }, now, outcome, {});
		expect(await finishWithEvent(env.DB, stale, jobId)).toBeNull();
		expect(await eventsOf(jobId)).toHaveLength(0);

		const winner = await finishWithEvent(env.DB, finishStatement(env.DB, row, now, outcome, {}), jobId);
		expect(winner?.job.status).toBe("succeeded");
		const again = await finishWithEvent(env.DB, finishStatement(env.DB, row, now, outcome, {}), jobId);
		expect(again).toBeNull();
		expect((await eventsOf(jobId)).map((e) => [e.id, e.type])).toEqual([[winner?.eventId, "job.succeeded"]]);
	});

	it("one delivery per job under duplicate notifications, consumer retries and duplicate events", async () => {
		const prefix = uniqueKey("once/");
		const receiver = hook("once");
		const sub = await subscribe({ url: receiver.url, prefix });
		const key = `${prefix}img.png`;
		const notification = await upload(key, await fixture("small.png"));

		// A model that has answered before: the capacity error retries the message.
		await warmUp();
		emulator.inject({ code: 3040, times: 1 });
		const first = await runConsumer([notification]);
		expect(first.result.retryMessages).toHaveLength(1);
		// The retry arrives together with a duplicate notification, then once more after the job is done.
		await runConsumer([notification, notification], { attempts: 2 });
		await runConsumer([notification], { attempts: 3 });
		const job = await onlyJob(key);
		expect(job.status).toBe("succeeded");

		const delivery = await waitForSettledDelivery(sub.id);
		expect(delivery.status).toBe("succeeded");
		const [event] = await eventsOf(job.id);
		expect(await eventsOf(job.id)).toHaveLength(1);
		expect(event?.dispatched_at).not.toBeNull();

		// The same event dispatched again (a redelivered or re-sent message) makes nothing new.
		const again = { kind: "job-event", event_id: event?.id, job_id: job.id };
		const run = await runWebhooks([again, again]);
		expect(run.result.explicitAcks).toHaveLength(2);
		expect(await deliveriesOf(sub.id)).toHaveLength(1);
		const requests = await receiver.received();
		expect(requests).toHaveLength(1);
		expect(verified(sub.secret, requests[0]!).data.id).toBe(job.id);
	});

	it("the cron sends an event that never reached the queue, and a delivery whose message was lost", async () => {
		const prefix = uniqueKey("sweep/");
		const lostEvent = hook("lost-event");
		const lostDelivery = hook("lost-delivery");
		const eventSub = await subscribe({ url: lostEvent.url, prefix: `${prefix}e/` });
		const deliverySub = await subscribe({ url: lostDelivery.url, prefix: `${prefix}d/` });
		// Finished an hour ago, at times no other test uses, so the sweep windows below hold only these.
		const t = Date.now() - 3_600_000 - Math.floor(Math.random() * 1_000_000);
		const a = await finishedJob(`${prefix}e/a.png`, "succeeded", { now: t });
		const b = await finishedJob(`${prefix}d/b.png`, "failed", { now: t + 1 });
		await dispatchEvent(env.DB, b.eventId, t + 1);

		const swept = await sweepWebhooks(env, t + 2 + 5 * 60_000);
		// At least these two (older leftovers of other tests are swept too: there is no horizon).
		expect(swept.events).toBeGreaterThanOrEqual(1);
		expect(swept.deliveries).toBeGreaterThanOrEqual(1);

		const [fromEvent] = await lostEvent.waitFor(1);
		expect(verified(eventSub.secret, fromEvent!).data.id).toBe(a.jobId);
		const [fromDelivery] = await lostDelivery.waitFor(1);
		expect(verified(deliverySub.secret, fromDelivery!).type).toBe("job.failed");
		expect((await eventsOf(a.jobId))[0]?.dispatched_at).not.toBeNull();
	});
});
