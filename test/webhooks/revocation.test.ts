/**
 * Revocation is airtight: a subscription created while its key is being revoked never stays active,
 * and after a revoke nothing signed with one of the key's secrets leaves (its subscriptions' and its
 * callbacks'), whether the delivery is made after the revoke or was queued before it. The key's
 * queued jobs and open batches still finish, and the admin reads their results.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Batch } from "../../shared/batches/schema";
import { Job } from "../../shared/jobs/schema";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import { deliverPage, putObjects, settled, waitForBatch } from "../batches/support";
import { call, createKey, errorOf, parsed, pollJob, revokeKey } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { runConsumer } from "../support/queue";
import { dispatchOne, finishedJob, hook, runWebhooks, subscribe, subscriptionRow } from "./support";

const KeySubscription = z.object({ id: z.string(), status: z.string(), disabled_reason: z.string().nullable() });

async function subscriptionsOfKey(keyId: string) {
	const { results } = await env.DB.prepare(
		"SELECT id, status, disabled_reason FROM webhook_subscriptions WHERE key_id = ?",
	)
		.bind(keyId)
		.all();
	return z.array(KeySubscription).parse(results);
}

async function deliveryRow(id: string) {
	return env.DB.prepare("SELECT status, last_error, attempts FROM webhook_deliveries WHERE id = ?").bind(id).first();
}

/** Dispatches an event and runs every delivery it made through the webhooks Worker; their ids. */
async function dispatchAndSend(eventId: string): Promise<string[]> {
	const dispatched = await dispatchEvent(env.DB, eventId);
	if (dispatched.kind !== "dispatched") throw new Error(`event ${eventId} was not dispatched: ${dispatched.kind}`);
	await runWebhooks(dispatched.deliveryIds.map((delivery_id) => ({ kind: "delivery", delivery_id })));
	return dispatched.deliveryIds;
}

describe("revoking a key while it creates subscriptions", () => {
	it("never leaves an active subscription of the revoked key, and nothing is signed with its secrets after", async () => {
		const ROUNDS = 6;
		const CREATES = 18;
		const tally = { created: 0, refused: 0 };
		for (let round = 0; round < ROUNDS; round++) {
			const prefix = uniqueKey(`race-${round}/`);
			const key = await createKey(prefix);
			const receiver = hook(`race-${round}`);
			const control = hook(`race-control-${round}`);
			const callback = hook(`race-callback-${round}`);
			await subscribe({ url: control.url, prefix });

			// Many creates in flight at once, started a millisecond apart; the revoke lands in the middle.
			const creates: Promise<Response>[] = [];
			let revoked: Promise<void> = Promise.resolve();
			for (let i = 0; i < CREATES; i++) {
				if (i === CREATES / 2) revoked = revokeKey(key.id);
				creates.push(
					call("POST", "/v1/webhooks", {
						token: key.token,
						json: { url: receiver.url, events: ["job.succeeded", "job.failed"] },
					}),
				);
				await new Promise((resolve) => setTimeout(resolve, 1));
			}
			const answers = await Promise.all(creates);
			await revoked;

			const statuses = answers.map((res) => res.status);
			expect(
				statuses.every((s) => s === 201 || s === 401),
				`round ${round}: ${statuses}`,
			).toBe(true);
			for (const res of answers.filter((r) => r.status === 401)) {
				expect((await errorOf(res)).code).toBe("unauthorized");
			}
			tally.created += statuses.filter((s) => s === 201).length;
			tally.refused += statuses.filter((s) => s === 401).length;
			const rows = await subscriptionsOfKey(key.id);
			expect(rows).toHaveLength(statuses.filter((s) => s === 201).length);
			for (const row of rows) {
				expect(row, `round ${round}`).toMatchObject({ status: "disabled", disabled_reason: "key_revoked" });
			}

			// An event of the key's prefix afterwards reaches only the admin's subscription.
			const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded", {
				callbackUrl: callback.url,
				keyId: key.id,
			});
			await dispatchAndSend(eventId);
			expect(await receiver.received(), `round ${round}`).toHaveLength(0);
			expect(await callback.received(), `round ${round}`).toHaveLength(0);
			expect(await control.received(), `round ${round}`).toHaveLength(1);
		}
		// The revoke did land in the middle: some creates went through before it, some after.
		expect(tally.created, JSON.stringify(tally)).toBeGreaterThan(0);
		expect(tally.refused, JSON.stringify(tally)).toBeGreaterThan(0);
	});
});

describe("after a revoke nothing signed with the key's secrets leaves", () => {
	it("a callback queued before the revoke is not sent; one made after it is not created", async () => {
		const prefix = uniqueKey("revoke-callback/");
		const key = await createKey(prefix);
		const callback = hook("revoke-callback");
		const before = await finishedJob(`${prefix}before.png`, "succeeded", { callbackUrl: callback.url, keyId: key.id });
		const queued = await dispatchOne(before.eventId);

		await revokeKey(key.id);

		await runWebhooks([{ kind: "delivery", delivery_id: queued }]);
		expect(await deliveryRow(queued)).toEqual({
			status: "failed",
			last_error: "The API key that owns this delivery was revoked",
			attempts: 1,
		});
		const after = await finishedJob(`${prefix}after.png`, "succeeded", { callbackUrl: callback.url, keyId: key.id });
		expect(await dispatchAndSend(after.eventId)).toEqual([]);
		expect(await callback.received()).toHaveLength(0);
		// The admin still reads the job's deliveries: the refused one, with its reason.
		const log = await call("GET", `/v1/jobs/${before.jobId}/deliveries`);
		expect(log.status).toBe(200);
		expect(await log.json()).toMatchObject({
			data: [{ id: queued, status: "failed", last_error: "The API key that owns this delivery was revoked" }],
		});
	});

	it("a subscription of a revoked key that is still active gets no delivery, new or queued", async () => {
		const prefix = uniqueKey("revoke-active/");
		const key = await createKey(prefix);
		const receiver = hook("revoke-active");
		const sub = await subscribe({ url: receiver.url }, key.token);
		const first = await finishedJob(`${prefix}first.png`, "succeeded");
		const queued = await dispatchOne(first.eventId);
		await revokeKey(key.id);
		// As a create that raced the revoke would leave it, were its insert not guarded.
		await env.DB.prepare("UPDATE webhook_subscriptions SET status = 'active', disabled_reason = NULL WHERE id = ?")
			.bind(sub.id)
			.run();

		await runWebhooks([{ kind: "delivery", delivery_id: queued }]);
		expect(await deliveryRow(queued)).toMatchObject({
			status: "failed",
			last_error: "The API key that owns this delivery was revoked",
		});
		const second = await finishedJob(`${prefix}second.png`, "succeeded");
		expect(await dispatchAndSend(second.eventId)).toEqual([]);
		expect(await receiver.received()).toHaveLength(0);
		expect((await subscriptionRow(sub.id)).status).toBe("active");
	});
});

describe("a revoked key's work still finishes", () => {
	it("its queued job and its open batch end, and the admin reads their results; their callbacks are not sent", async () => {
		const prefix = uniqueKey("revoke-work/");
		const key = await createKey(prefix);
		const callback = hook("revoke-work-callback");
		const admins = hook("revoke-work-admin");
		await subscribe({ url: admins.url, prefix, events: ["job.succeeded", "batch.completed"] });
		const objects = [`${prefix}b/1.jpg`, `${prefix}b/2.jpg`, `${prefix}job.jpg`];
		await putObjects(objects);
		// Made while the key is valid, their messages held until it is revoked: they run after it.
		// Caption and listing messages go to a queue nothing consumes.
		const held = { CAPTION_JOBS: env.HELD_MESSAGES, BATCH_LISTING: env.HELD_MESSAGES };
		const jobRes = await call("POST", "/v1/jobs", {
			token: key.token,
			json: { key: `${prefix}job.jpg`, callback_url: callback.url },
			env: held,
		});
		expect(jobRes.status).toBe(202);
		const job = await parsed(jobRes, Job);
		const batchRes = await call("POST", "/v1/batches", {
			token: key.token,
			json: { prefix: `${prefix}b/`, callback_url: callback.url },
			env: held,
		});
		expect(batchRes.status).toBe(202);
		const batch = await parsed(batchRes, Batch);

		await revokeKey(key.id);
		expect((await call("GET", `/v1/jobs/${job.id}`, { token: key.token })).status).toBe(401);
		await runConsumer([{ kind: "caption-job", job_id: job.id }]);
		await deliverPage(batch.id, 0, { env: { BATCH_LISTING: env.BATCH_LISTING } });

		expect(await pollJob(job.id)).toMatchObject({ status: "succeeded", key: `${prefix}job.jpg` });
		const done = await waitForBatch(batch.id, settled);
		expect(done).toMatchObject({ status: "completed" });
		expect(done.counts.succeeded).toBe(2);
		const results = await call("GET", `/v1/batches/${batch.id}/results`);
		expect(results.status).toBe(200);
		const lines = (await results.text())
			.trim()
			.split("\n")
			.map((line) => Job.parse(JSON.parse(line)));
		expect(lines.map((j) => [j.key, j.status])).toEqual([
			[`${prefix}b/1.jpg`, "succeeded"],
			[`${prefix}b/2.jpg`, "succeeded"],
		]);

		// Their events reach the admin's subscription (three jobs, the batch), never the key's callback URL.
		const types = (await admins.waitFor(4)).map((r) => z.object({ type: z.string() }).parse(JSON.parse(r.body)).type);
		expect(types.sort()).toEqual(["batch.completed", "job.succeeded", "job.succeeded", "job.succeeded"]);
		expect(await callback.received()).toHaveLength(0);
		const callbacks = await env.DB.prepare(
			`SELECT count(*) AS n FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE d.subscription_id IS NULL AND (${isEventOfJob("e.", "?1")} OR e.batch_id = ?2)`,
		)
			.bind(job.id, batch.id)
			.first("n");
		expect(callbacks).toBe(0);
	});
});
