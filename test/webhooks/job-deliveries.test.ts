/** GET /v1/jobs/{id}/deliveries: a job's deliveries, with their subscription, within the caller's scope. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { JobDeliveryList } from "../../workers/status/routes/job-deliveries";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import { call, createKey, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { finishedJob, hook, runWebhooks, subscribe } from "./support";

async function deliveriesOfJob(jobId: string, token?: string) {
	const res = await call("GET", `/v1/jobs/${jobId}/deliveries`, token ? { token } : {});
	expect(res.status).toBe(200);
	const body = await parsed(res, JobDeliveryList);
	expect(body.next_cursor).toBeNull();
	return body.data;
}

describe("GET /v1/jobs/{id}/deliveries", () => {
	it("lists every target of the job's event with its attempts, naming the subscription or null for the callback", async () => {
		const prefix = uniqueKey("job-deliveries/");
		const subscription = hook("job-sub");
		const callback = hook("job-callback");
		const sub = await subscribe({ url: subscription.url, prefix });
		const { jobId, eventId } = await finishedJob(`${prefix}a.png`, "succeeded", { callbackUrl: callback.url });
		expect(await deliveriesOfJob(jobId)).toEqual([]);

		const dispatched = await dispatchEvent(env.DB, eventId);
		const ids = dispatched.kind === "dispatched" ? dispatched.deliveryIds : [];
		expect(ids).toHaveLength(2);
		await runWebhooks(ids.map((id) => ({ kind: "delivery", delivery_id: id })));

		const deliveries = await deliveriesOfJob(jobId);
		expect(deliveries.map((d) => [d.subscription_id, d.url, d.status, d.attempts]).sort()).toEqual(
			[
				[sub.id, subscription.url, "succeeded", 1],
				[null, callback.url, "succeeded", 1],
			].sort(),
		);
		for (const d of deliveries) {
			expect(d.job_id).toBe(jobId);
			expect(d.attempt_log.map((a) => [a.attempt, a.status_code])).toEqual([[1, 200]]);
		}
	});

	it("a scoped key sees the callback of a job it made and its own subscriptions, not another caller's receiver; 404 outside its prefix", async () => {
		const prefix = uniqueKey("job-deliveries-scope/");
		const key = await createKey(prefix);
		// Another key that sees the same objects: a callback URL may carry its receiver's token.
		const wider = await createKey(prefix.slice(0, prefix.indexOf("/") + 1));
		// The admin's own subscription, on the same prefix: the key must not see it, though it covers the job.
		const admins = await subscribe({ url: hook("admin-sub").url, prefix });
		const its = await subscribe({ url: hook("key-sub").url, prefix }, key.token);
		const made = await finishedJob(`${prefix}a.png`, "failed", { callbackUrl: hook("cb").url, keyId: key.id });
		const adminMade = await finishedJob(`${prefix}b.png`, "failed", { callbackUrl: hook("admin-cb").url });
		await dispatchEvent(env.DB, made.eventId);
		await dispatchEvent(env.DB, adminMade.eventId);

		const all = await deliveriesOfJob(made.jobId);
		expect(all.map((d) => d.subscription_id)).toEqual(expect.arrayContaining([admins.id, its.id, null]));
		const scoped = await deliveriesOfJob(made.jobId, key.token);
		expect(scoped.map((d) => d.subscription_id).sort()).toEqual([its.id, null].sort());
		// The admin's callback, and the key's callback to the other key: never shown.
		expect((await deliveriesOfJob(adminMade.jobId, key.token)).map((d) => d.subscription_id)).toEqual([its.id]);
		expect(await deliveriesOfJob(made.jobId, wider.token)).toEqual([]);
		expect((await deliveriesOfJob(adminMade.jobId)).map((d) => d.subscription_id)).toContain(null);

		const outside = await finishedJob(`${uniqueKey("elsewhere/")}c.png`, "succeeded");
		const res = await call("GET", `/v1/jobs/${outside.jobId}/deliveries`, { token: key.token });
		expect(res.status).toBe(404);
		expect((await call("GET", "/v1/jobs/job_NOPE/deliveries")).status).toBe(404);
	});
});
