/**
 * Deliveries end to end through the real queues: caption consumer → outbox → webhook-deliveries →
 * fan-out → one delivery per target → the receiver this test runs, which checks every request with
 * the `standardwebhooks` package.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { call } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { until } from "../support/poll";
import { onlyJob, runConsumer } from "../support/queue";
import { deliveriesOf, hook, subscribe, verified, waitForSettledDelivery } from "./support";

/** Uploads an image under `prefix` and captions it with the real consumer handler. */
async function captioned(prefix: string, metadata?: Record<string, string>) {
	const key = `${prefix}img.png`;
	await runConsumer([await upload(key, await fixture("small.png"), metadata)]);
	return onlyJob(key);
}

// Each test has its own keys, subscriptions and receiver endpoints, so they run side by side.
describe.concurrent("webhook delivery", () => {
	it("a 500 is retried and then delivered, with the same webhook-id and a valid signature each time", async () => {
		const prefix = uniqueKey("wh500/");
		const receiver = hook("retry");
		// The first answer comes after a known wait, which its attempt's duration must include.
		await receiver.script([{ status: 500, delayMs: 300 }]);
		const sub = await subscribe({ url: receiver.url, prefix });
		const job = await captioned(prefix);
		expect(job.status).toBe("succeeded");

		const requests = await receiver.waitFor(2);
		const [first, second] = requests.map((r) => verified(sub.secret, r));
		expect(requests.map((r) => r.method)).toEqual(["POST", "POST"]);
		expect(requests[0]?.headers["webhook-id"]).toBe(requests[1]?.headers["webhook-id"]);
		expect(second).toEqual(first);
		expect(first?.type).toBe("job.succeeded");
		const api = await (await call("GET", `/v1/jobs/${job.id}`)).json();
		expect(first?.data).toEqual(api);

		const delivery = await waitForSettledDelivery(sub.id);
		expect(delivery).toMatchObject({ id: requests[0]?.headers["webhook-id"], status: "succeeded", attempts: 2 });
		expect(delivery.attempt_log.map((a) => a.status_code)).toEqual([500, 200]);
		expect(delivery.attempt_log[0]?.error).toBe("The endpoint answered 500");
		expect(delivery.attempt_log[0]?.duration_ms).toBeGreaterThanOrEqual(300);
		// Attempt 1 is kept in the delivery's row, a later one in webhook_attempts (shared/webhooks/attempts.ts).
		const log = await env.DB.prepare("SELECT attempt, status_code FROM webhook_attempts WHERE delivery_id = ?")
			.bind(delivery.id)
			.all();
		expect(log.results).toEqual([{ attempt: 2, status_code: 200 }]);
		const inRow = await env.DB.prepare("SELECT attempt1_status_code AS code FROM webhook_deliveries WHERE id = ?")
			.bind(delivery.id)
			.first("code");
		expect(inRow).toBe(500);
	});

	it("a 400 is not retried: one request, the delivery failed and logged", async () => {
		const prefix = uniqueKey("wh400/");
		const receiver = hook("bad-request");
		await receiver.script([{ status: 400 }]);
		const sub = await subscribe({ url: receiver.url, prefix });
		await captioned(prefix);

		const delivery = await waitForSettledDelivery(sub.id);
		expect(delivery).toMatchObject({ status: "failed", attempts: 1, last_status_code: 400 });
		expect(delivery.attempt_log).toEqual([
			expect.objectContaining({ attempt: 1, status_code: 400, error: "The endpoint answered 400" }),
		]);
		const requests = await receiver.received();
		expect(requests).toHaveLength(1);
		verified(sub.secret, requests[0]!);
	});

	it("a 410 disables the subscription, which then gets nothing more", async () => {
		const prefix = uniqueKey("wh410/");
		const gone = hook("gone");
		const control = hook("control");
		await gone.script([{ status: 410 }]);
		const sub = await subscribe({ url: gone.url, prefix });
		const other = await subscribe({ url: control.url, prefix });
		await captioned(`${prefix}a/`);

		const delivery = await waitForSettledDelivery(sub.id);
		expect(delivery).toMatchObject({ status: "failed", last_status_code: 410 });
		const after = await (await call("GET", `/v1/webhooks/${sub.id}`)).json();
		expect(after).toMatchObject({ status: "disabled", disabled_reason: "The endpoint answered 410 Gone" });

		// The next job reaches the control subscription but not the disabled one.
		await captioned(`${prefix}b/`);
		await control.waitFor(2);
		expect(await gone.received()).toHaveLength(1);
		expect(await deliveriesOf(sub.id)).toHaveLength(1);
		expect(await deliveriesOf(other.id)).toHaveLength(2);
	});

	it("a failed job is delivered as job.failed with the job's error", async () => {
		const prefix = uniqueKey("whfail/");
		const receiver = hook("failed");
		const sub = await subscribe({ url: receiver.url, prefix, events: ["job.failed"] });
		await runConsumer([await upload(`${prefix}not-an-image.png`, "plain text")]);
		const [request] = await receiver.waitFor(1);
		const payload = verified(sub.secret, request!);
		expect(payload.type).toBe("job.failed");
		expect(payload.data.error?.code).toBe("unsupported_media_type");
	});

	it("a per-object callback-url gets the event signed with WEBHOOK_SECRET", async () => {
		const prefix = uniqueKey("whcb/");
		const receiver = hook("callback");
		const job = await captioned(prefix, { "callback-url": receiver.url });
		const [request] = await receiver.waitFor(1);
		const payload = verified(env.WEBHOOK_SECRET, request!);
		expect(payload).toMatchObject({ type: "job.succeeded", data: { id: job.id, key: job.key } });
		expect(() => verified("whsec_c29tZSBvdGhlciBzZWNyZXQ=", request!)).toThrow();
	});

	it("a callback-url refused by the SSRF check fails the job with invalid_options: no callback delivery, no request", async () => {
		const prefix = uniqueKey("whssrf/");
		const job = await captioned(prefix, { "callback-url": "http://169.254.169.254/latest/meta-data/" });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options", callback_url: null });
		expect(job.error_message).toContain("169.254.169.254 is a link-local (cloud metadata) address");
		// The failed job's event is dispatched to subscriptions only: nothing is ever sent to the URL.
		await until(`the event of ${job.id} was not dispatched`, async () => {
			const event = await env.DB.prepare(`SELECT dispatched_at FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
				.bind(job.id)
				.first("dispatched_at");
			return event === null || event === undefined ? undefined : event;
		});
		const deliveries = await env.DB.prepare(
			`SELECT count(*) AS n FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE ${isEventOfJob("e.", "?1")} AND d.subscription_id IS NULL`,
		)
			.bind(job.id)
			.first("n");
		expect(deliveries).toBe(0);
	});
});
