/**
 * Webhook secrets: stored sealed, never in clear; rotation with a 24 h overlap during
 * which every delivery carries both signatures; callbacks of a scoped key's jobs signed with that
 * key's own secret. Every received delivery is checked with the `standardwebhooks` package.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { JobRow } from "../../shared/jobs/schema";
import { RotatedWebhookSecret, WebhookSubscription } from "../../shared/webhooks/schema";
import { newWebhookSecret } from "../../shared/webhooks/sign";
import status from "../../workers/status/index";
import webhooks from "../../workers/webhooks/index";
import { createBatch, putObjects } from "../batches/support";
import { call, createKey, errorOf, parsed, uploadViaApi } from "../status/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { until } from "../support/poll";
import {
	dispatchOne,
	finishedJob,
	hook,
	type Received,
	runWebhooks,
	subscribe,
	subscriptionRow,
	verified,
	verifiedBatchEvent,
} from "./support";

/** Finishes a job under `prefix` and sends its one delivery; returns what the receiver got for it. */
async function deliverOne(prefix: string, receiver: ReturnType<typeof hook>): Promise<Received> {
	const seen = (await receiver.received()).length;
	const { eventId } = await finishedJob(`${prefix}${crypto.randomUUID()}.png`, "succeeded");
	await runWebhooks([{ kind: "delivery", delivery_id: await dispatchOne(eventId) }]);
	const requests = await receiver.waitFor(seen + 1);
	const request = requests[seen];
	if (!request) throw new Error("no delivery");
	return request;
}

const accepts = (secret: string, request: Received) => {
	try {
		new Webhook(secret).verify(request.body, request.headers);
		return true;
	} catch {
		return false;
	}
};

describe.concurrent("webhook secrets at rest", () => {
	it("a subscription's secret is stored sealed, and deliveries verify with the secret shown at creation", async () => {
		const prefix = uniqueKey("sealed/");
		const receiver = hook("sealed");
		const sub = await subscribe({ url: receiver.url, prefix });
		const row = await subscriptionRow(sub.id);
		expect(row.secret).toMatch(/^v1\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
		expect(row.secret).not.toContain(sub.secret.slice("whsec_".length));
		const request = await deliverOne(prefix, receiver);
		expect(verified(sub.secret, request).type).toBe("job.succeeded");
		expect(request.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
	});

	it("a sealed secret copied to another subscription's row does not sign for it", async () => {
		const prefix = uniqueKey("sealed-copy/");
		const receiver = hook("sealed-copy");
		const donor = await subscribe({ url: hook("donor").url, prefix: uniqueKey("donor/") });
		const sub = await subscribe({ url: receiver.url, prefix });
		await env.DB.prepare(
			"UPDATE webhook_subscriptions SET secret = (SELECT secret FROM webhook_subscriptions WHERE id = ?) WHERE id = ?",
		)
			.bind(donor.id, sub.id)
			.run();
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		const { result } = await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);
		expect(result.retryMessages).toHaveLength(1);
		expect(await receiver.received()).toHaveLength(0);
		const delivery = await env.DB.prepare("SELECT status, last_error FROM webhook_deliveries WHERE id = ?")
			.bind(deliveryId)
			.first();
		expect(delivery).toEqual({
			status: "pending",
			last_error: `The stored secret of webhook_subscriptions:${sub.id} does not open with WEBHOOK_SECRETS_KEY`,
		});
	});

	it("a row from before sealing (clear secret) keeps working, and the webhooks cron seals it", async () => {
		const prefix = uniqueKey("legacy/");
		const receiver = hook("legacy");
		const sub = await subscribe({ url: receiver.url, prefix });
		const legacySecret = newWebhookSecret();
		// As migration 0006 leaves a row written before it: the secret in clear.
		await env.DB.prepare("UPDATE webhook_subscriptions SET secret = ? WHERE id = ?").bind(legacySecret, sub.id).run();
		expect(verified(legacySecret, await deliverOne(prefix, receiver)).type).toBe("job.succeeded");

		const ctx = createExecutionContext();
		await webhooks.scheduled(createScheduledController({ cron: "*/5 * * * *" }), env, ctx);
		await waitOnExecutionContext(ctx);

		const row = await subscriptionRow(sub.id);
		expect(row.secret.startsWith("v1.")).toBe(true);
		expect(row.secret).not.toContain(legacySecret.slice("whsec_".length));
		const clear = await env.DB.prepare(
			"SELECT count(*) AS n FROM webhook_subscriptions WHERE secret LIKE 'whsec_%'",
		).first("n");
		expect(clear).toBe(0);
		expect(verified(legacySecret, await deliverOne(prefix, receiver)).type).toBe("job.succeeded");
	});
});

describe("without WEBHOOK_SECRETS_KEY", () => {
	/** The status Worker of a deployment that lacks the sealing key. */
	function callUnsealed(method: string, path: string, json?: unknown) {
		const request = new Request(`https://status.test${path}`, {
			method,
			headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
			body: json === undefined ? undefined : JSON.stringify(json),
		});
		return status.fetch(request, { ...env, WEBHOOK_SECRETS_KEY: undefined }, createExecutionContext());
	}

	it("no subscription, rotation or key is made (503 unavailable), rather than a secret kept in clear", async () => {
		const prefix = uniqueKey("unsealed/");
		const sub = await subscribe({ url: hook("unsealed").url, prefix });
		const answers = [
			await callUnsealed("POST", "/v1/webhooks", { url: hook("x").url, events: ["job.succeeded"], prefix }),
			await callUnsealed("POST", `/v1/webhooks/${sub.id}/rotate-secret`),
			await callUnsealed("POST", "/v1/keys", { name: prefix }),
		];
		for (const res of answers) {
			expect(res.status).toBe(503);
			expect(await errorOf(res)).toMatchObject({
				code: "unavailable",
				message: expect.stringContaining("WEBHOOK_SECRETS_KEY"),
			});
		}
		const made = await env.DB.prepare(
			"SELECT (SELECT count(*) FROM webhook_subscriptions WHERE prefix = ?1) + (SELECT count(*) FROM api_keys WHERE name = ?1) AS n",
		)
			.bind(prefix)
			.first("n");
		expect(made).toBe(1);
		expect((await subscriptionRow(sub.id)).previous_secret).toBeNull();
	});
});

describe.concurrent("POST /v1/webhooks/{id}/rotate-secret", () => {
	it("returns the new secret once; for 24 h both signatures are sent, then only the new one", async () => {
		const prefix = uniqueKey("rotate/");
		const receiver = hook("rotate");
		const sub = await subscribe({ url: receiver.url, prefix });
		const before = Date.now();
		const res = await call("POST", `/v1/webhooks/${sub.id}/rotate-secret`);
		expect(res.status).toBe(200);
		const rotated = await parsed(res, RotatedWebhookSecret);
		expect(rotated.secret).toMatch(/^whsec_/);
		expect(rotated.secret).not.toBe(sub.secret);
		const overlapEnd = Date.parse(rotated.previous_secret_expires_at ?? "");
		expect(overlapEnd).toBeGreaterThanOrEqual(before + 24 * 3_600_000);
		expect(overlapEnd).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000);
		const shown = await call("GET", `/v1/webhooks/${sub.id}`);
		expect(await shown.clone().json()).not.toHaveProperty("secret");
		expect((await parsed(shown, WebhookSubscription)).previous_secret_expires_at).toBe(
			rotated.previous_secret_expires_at,
		);
		const row = await subscriptionRow(sub.id);
		expect(row.previous_secret).toMatch(/^v1\./);
		expect(row.secret).not.toContain(rotated.secret.slice("whsec_".length));

		const during = await deliverOne(prefix, receiver);
		expect(during.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
		expect([accepts(sub.secret, during), accepts(rotated.secret, during)]).toEqual([true, true]);
		expect(accepts(newWebhookSecret(), during)).toBe(false);

		// 24 h later (the overlap's end set in D1 rather than waited for).
		await env.DB.prepare("UPDATE webhook_subscriptions SET previous_secret_expires_at = ? WHERE id = ?")
			.bind(Date.now() - 1, sub.id)
			.run();
		const after = await deliverOne(prefix, receiver);
		expect(after.headers["webhook-signature"]?.split(" ")).toHaveLength(1);
		expect([accepts(sub.secret, after), accepts(rotated.secret, after)]).toEqual([false, true]);
		expect(
			(await parsed(await call("GET", `/v1/webhooks/${sub.id}`), WebhookSubscription)).previous_secret_expires_at,
		).toBeNull();
	});

	it("a second rotation keeps only the secret it replaces in the overlap", async () => {
		const prefix = uniqueKey("rotate2/");
		const receiver = hook("rotate2");
		const sub = await subscribe({ url: receiver.url, prefix });
		const first = await parsed(await call("POST", `/v1/webhooks/${sub.id}/rotate-secret`), RotatedWebhookSecret);
		const second = await parsed(await call("POST", `/v1/webhooks/${sub.id}/rotate-secret`), RotatedWebhookSecret);
		const request = await deliverOne(prefix, receiver);
		expect([sub.secret, first.secret, second.secret].map((s) => accepts(s, request))).toEqual([false, true, true]);
	});

	it("an unknown subscription answers 404", async () => {
		expect((await call("POST", "/v1/webhooks/wh_NOPE/rotate-secret")).status).toBe(404);
	});
});

describe.concurrent("callbacks of a scoped key's jobs", () => {
	it("a key's webhook secret is shown once at creation and stored sealed", async () => {
		const key = await createKey(uniqueKey("keysecret/"));
		expect(key.webhook_secret).toMatch(/^whsec_/);
		const stored = await env.DB.prepare("SELECT webhook_secret FROM api_keys WHERE id = ?")
			.bind(key.id)
			.first("webhook_secret");
		expect(z.string().parse(stored)).toMatch(/^v1\./);
		expect(stored).not.toContain(key.webhook_secret.slice("whsec_".length));
		const listed = await (await call("GET", "/v1/keys")).text();
		expect(listed).not.toContain(key.webhook_secret);
	});

	it("an upload's callback is signed with the key's own secret, not WEBHOOK_SECRET; the admin's outside every scope with WEBHOOK_SECRET", async () => {
		const prefix = uniqueKey("keycb/");
		const key = await createKey(prefix);
		const keyReceiver = hook("key-callback");
		const adminReceiver = hook("admin-callback");
		const image = await fixture("small.png");
		const byKey = await uploadViaApi(`${prefix}k.png`, image, { "X-Callback-Url": keyReceiver.url }, key.token);
		const byAdmin = await uploadViaApi(uniqueKey("unscoped/a.png"), image, { "X-Callback-Url": adminReceiver.url });
		const keyId = await env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(byKey.id).first();
		expect(z.object({ key_id: z.string() }).parse(keyId).key_id).toBe(key.id);
		expect(JobRow.safeParse(keyId).success).toBe(true);

		const [toKey] = await keyReceiver.waitFor(1);
		expect(verified(key.webhook_secret, toKey!).data.id).toBe(byKey.id);
		expect(accepts(env.WEBHOOK_SECRET, toKey!)).toBe(false);
		const [toAdmin] = await adminReceiver.waitFor(1);
		expect(verified(env.WEBHOOK_SECRET, toAdmin!).data.id).toBe(byAdmin.id);
		expect(accepts(key.webhook_secret, toAdmin!)).toBe(false);
	});

	it("POST /v1/jobs with a key: the callback_url gets the key's signature", async () => {
		const prefix = uniqueKey("keyjob/");
		const key = await createKey(prefix);
		const receiver = hook("key-job");
		await env.BUCKET.put(`${prefix}x.png`, await fixture("small.png"));
		const res = await call("POST", "/v1/jobs", {
			token: key.token,
			json: { key: `${prefix}x.png`, callback_url: receiver.url },
		});
		expect(res.status).toBe(202);
		const [request] = await receiver.waitFor(1);
		expect(verified(key.webhook_secret, request!).data.key).toBe(`${prefix}x.png`);
		const row = await until("the callback delivery has no key", async () =>
			env.DB.prepare("SELECT key_id FROM webhook_deliveries WHERE url = ?").bind(receiver.url).first("key_id"),
		);
		expect(row).toBe(key.id);
	});

	it("the admin's job on a tenant's object: its callback-url gets the secret of the key whose scope holds the object", async () => {
		const prefix = uniqueKey("tenantobj/");
		const outer = await createKey(prefix);
		const inner = await createKey(`${prefix}inner/`);
		const toOuter = hook("tenant-outer");
		const toInner = hook("tenant-inner");
		const image = await fixture("small.png");
		const inOuter = await uploadViaApi(`${prefix}a.png`, image, { "X-Callback-Url": toOuter.url });
		const inInner = await uploadViaApi(`${prefix}inner/b.png`, image, { "X-Callback-Url": toInner.url });

		const [outerRequest] = await toOuter.waitFor(1);
		expect(verified(outer.webhook_secret, outerRequest!).data.id).toBe(inOuter.id);
		expect(accepts(env.WEBHOOK_SECRET, outerRequest!)).toBe(false);
		// The most specific scope holding the object signs.
		const [innerRequest] = await toInner.waitFor(1);
		expect(verified(inner.webhook_secret, innerRequest!).data.id).toBe(inInner.id);
		expect([outer.webhook_secret, env.WEBHOOK_SECRET].map((s) => accepts(s, innerRequest!))).toEqual([false, false]);
	});

	it("a batch made with a key: the callback-url of an object's job gets the key's signature", async () => {
		const prefix = uniqueKey("keybatchjob/");
		// A key of the whole bucket: no scoped key holds the object, so only the job's key_id can pick the secret.
		const key = await createKey();
		const receiver = hook("key-batch-job");
		await env.BUCKET.put(`${prefix}one.png`, await fixture("small.png"), {
			customMetadata: { "callback-url": receiver.url },
		});
		const batch = await createBatch({ keys: [`${prefix}one.png`] }, key.token);
		const [request] = await receiver.waitFor(1, 25_000);
		expect(verified(key.webhook_secret, request!).data).toMatchObject({ key: `${prefix}one.png`, batch_id: batch.id });
		expect(accepts(env.WEBHOOK_SECRET, request!)).toBe(false);
	});

	it("a batch made with a key: its batch.completed callback gets the key's signature", async () => {
		const prefix = uniqueKey("keybatch/");
		const key = await createKey(prefix);
		const receiver = hook("key-batch");
		await putObjects([`${prefix}one.jpg`]);
		const batch = await createBatch({ keys: [`${prefix}one.jpg`], callback_url: receiver.url }, key.token);
		const [request] = await receiver.waitFor(1, 25_000);
		const event = verifiedBatchEvent(key.webhook_secret, request!);
		expect(event).toMatchObject({ type: "batch.completed", data: { id: batch.id } });
		expect(accepts(env.WEBHOOK_SECRET, request!)).toBe(false);
	});
});
