/**
 * The retry policy of one delivery, driving the webhooks Worker's queue handler directly so the
 * test sees each message's outcome and the delay it asks for (deliveries made by the real fan-out
 * code, not enqueued, so no other consumer touches them).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEAD_LETTER_ERROR } from "../../workers/webhooks/dead-letter";
import { uniqueKey } from "../support/fixtures";
import {
	deliveriesOf,
	dispatchOne,
	finishedJob,
	hook,
	runWebhooks,
	type ScriptedAnswer,
	subscribe,
	verified,
} from "./support";

/** A subscription with a scripted receiver and one undelivered delivery for it. */
async function pendingDelivery(answers: ScriptedAnswer[], url?: string) {
	const prefix = uniqueKey("retry/");
	const receiver = hook("retries");
	await receiver.script(answers);
	const sub = await subscribe({ url: url ?? receiver.url, prefix });
	const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
	const deliveryId = await dispatchOne(eventId);
	return { receiver, sub, deliveryId, message: { kind: "delivery", delivery_id: deliveryId } };
}

describe.concurrent("delivery retries", () => {
	it("Retry-After in seconds, then as an HTTP date, sets the retry delay; then it is delivered", async () => {
		const inTwoMinutes = new Date(Date.now() + 120_000).toUTCString();
		const { receiver, sub, deliveryId, message } = await pendingDelivery([
			{ status: 429, headers: { "Retry-After": "7" } },
			{ status: 503, headers: { "Retry-After": inTwoMinutes } },
		]);

		const first = await runWebhooks([message]);
		expect(first.result.retryMessages).toEqual([{ msgId: first.ids[0] }]);
		expect(first.retryDelays.get(first.ids[0]!)).toBe(7);

		const second = await runWebhooks([message], { attempts: 2 });
		const delay = second.retryDelays.get(second.ids[0]!) ?? 0;
		expect(delay).toBeGreaterThanOrEqual(118);
		expect(delay).toBeLessThanOrEqual(121);

		const third = await runWebhooks([message], { attempts: 3 });
		expect(third.result.explicitAcks).toEqual([third.ids[0]]);
		expect(third.result.retryMessages).toEqual([]);

		const requests = await receiver.received();
		expect(requests).toHaveLength(3);
		for (const request of requests) {
			verified(sub.secret, request);
			expect(request.headers["webhook-id"]).toBe(deliveryId);
		}
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({ id: deliveryId, status: "succeeded", attempts: 3, last_status_code: 200 });
		expect(delivery?.attempt_log.map((a) => a.status_code)).toEqual([429, 503, 200]);
	});

	it("without Retry-After the delay grows exponentially with jitter", async () => {
		const { message } = await pendingDelivery([{ status: 500 }, { status: 502 }, { status: 500 }]);
		const policy = { WEBHOOK_RETRY_BASE_SECONDS: "10", WEBHOOK_RETRY_MAX_SECONDS: "1000" };
		const delays: number[] = [];
		for (const attempts of [1, 2, 3]) {
			const run = await runWebhooks([message], { attempts, env: policy });
			delays.push(run.retryDelays.get(run.ids[0]!) ?? -1);
		}
		// Equal jitter: between half and all of 10 × 2^(attempt - 1) seconds.
		expect(delays[0]).toBeGreaterThanOrEqual(5);
		expect(delays[0]).toBeLessThanOrEqual(10);
		expect(delays[1]).toBeGreaterThanOrEqual(10);
		expect(delays[1]).toBeLessThanOrEqual(20);
		expect(delays[2]).toBeGreaterThanOrEqual(20);
		expect(delays[2]).toBeLessThanOrEqual(40);
	});

	it("a 5xx at exactly the maximum attempt (WEBHOOK_MAX_RETRIES) is still retried", async () => {
		const { sub, message } = await pendingDelivery([{ status: 500 }]);
		const run = await runWebhooks([message], { attempts: Number(env.WEBHOOK_MAX_RETRIES) });
		expect(run.result.retryMessages).toEqual([{ msgId: run.ids[0] }]);
		expect(run.result.explicitAcks).toEqual([]);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({
			status: "pending",
			last_status_code: 500,
			last_error: "The endpoint answered 500",
		});
	});

	it("a 5xx on the last allowed attempt fails the delivery instead of retrying", async () => {
		const { sub, message } = await pendingDelivery([{ status: 500 }]);
		const last = Number(env.WEBHOOK_MAX_RETRIES) + 1;
		const run = await runWebhooks([message], { attempts: last });
		expect(run.result.explicitAcks).toEqual([run.ids[0]]);
		expect(run.result.retryMessages).toEqual([]);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({ status: "failed", last_status_code: 500 });
		expect(delivery?.last_error).toBe(`The endpoint answered 500; gave up after ${last} attempts`);
	});

	it("an endpoint that does not answer within the timeout is retried, and the timeout is logged", async () => {
		const { sub, message } = await pendingDelivery([{ status: 200, delayMs: 1500 }]);
		const run = await runWebhooks([message], { env: { WEBHOOK_TIMEOUT_MS: "200" } });
		expect(run.result.retryMessages).toEqual([{ msgId: run.ids[0] }]);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({
			status: "pending",
			last_status_code: null,
			last_error: "No answer within 200 ms",
		});
	});

	it("a network error (nothing listening) is retried", async () => {
		const { sub, message } = await pendingDelivery([], "http://127.0.0.1:1/hook");
		const run = await runWebhooks([message]);
		expect(run.result.retryMessages).toEqual([{ msgId: run.ids[0] }]);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery?.status).toBe("pending");
		expect(delivery?.last_error).toMatch(/^Network error: /);
		expect(delivery?.attempt_log).toHaveLength(1);
	});

	it("a 3xx is not followed and not retried", async () => {
		const { receiver, sub, message } = await pendingDelivery([
			{ status: 302, headers: { Location: "http://169.254.169.254/" } },
		]);
		const run = await runWebhooks([message]);
		expect(run.result.explicitAcks).toEqual([run.ids[0]]);
		expect(await receiver.received()).toHaveLength(1);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({
			status: "failed",
			last_error: "The endpoint answered 302 (redirects are not followed)",
		});
	});

	it("duplicate messages for one delivery make one request", async () => {
		const { receiver, message } = await pendingDelivery([]);
		// Two copies in one batch (one finds the other's lease), then a late copy after success.
		await runWebhooks([message, message]);
		const late = await runWebhooks([message]);
		expect(late.result.explicitAcks).toEqual([late.ids[0]]);
		expect(await receiver.received()).toHaveLength(1);
	});

	it("the dead-letter queue marks a pending delivery failed, without sending it", async () => {
		const { receiver, sub, message } = await pendingDelivery([]);
		const run = await runWebhooks([message], { queue: "webhook-deliveries-dlq" });
		expect(run.result.explicitAcks).toEqual([run.ids[0]]);
		const [delivery] = await deliveriesOf(sub.id);
		expect(delivery).toMatchObject({ status: "failed", last_error: DEAD_LETTER_ERROR });
		expect(await receiver.received()).toHaveLength(0);
	});
});
