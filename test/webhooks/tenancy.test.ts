/**
 * Subscriptions belong to the key that made them: revoking the key disables them and the
 * fan-out skips them; only their creator or the admin may delete, rotate or redeliver; a key may
 * have MAX_SUBSCRIPTIONS_PER_KEY of them; and an endpoint that fails every attempt for 24 h is
 * disabled (timestamps set in D1, not waited for).
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { WebhookDelivery, WebhookSubscription } from "../../shared/webhooks/schema";
import status from "../../workers/status/index";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import { call, createKey, errorOf, pageOf, parsed, revokeKey } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { dispatchOne, finishedJob, hook, runWebhooks, subscribe, subscriptionRow, verified } from "./support";

const HOUR = 3_600_000;

/** The status Worker with some vars changed, as a deployment with other settings would run it. */
function callWith(vars: Partial<TestEnv>, method: string, path: string, token: string, json?: unknown) {
	const request = new Request(`https://status.test${path}`, {
		method,
		headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
		body: json === undefined ? undefined : JSON.stringify(json),
	});
	return status.fetch(request, { ...env, ...vars }, createExecutionContext());
}

describe.concurrent("subscriptions and the keys that own them", () => {
	it("shows the owner key_id: the creating key's id, null for the admin token", async () => {
		const prefix = uniqueKey("owner/");
		const key = await createKey(prefix);
		const byKey = await subscribe({ url: hook("owner-key").url }, key.token);
		const byAdmin = await subscribe({ url: hook("owner-admin").url, prefix });
		expect(byKey.key_id).toBe(key.id);
		expect(byAdmin.key_id).toBeNull();
		expect((await subscriptionRow(byKey.id)).key_id).toBe(key.id);
		const list = await parsed(await call("GET", "/v1/webhooks"), pageOf(WebhookSubscription));
		const owners = Object.fromEntries(list.data.map((s) => [s.id, s.key_id]));
		expect(owners[byKey.id]).toBe(key.id);
		expect(owners[byAdmin.id]).toBeNull();
	});

	it("a key lists and reads only its own subscriptions and their delivery logs (404 for the others')", async () => {
		const prefix = uniqueKey("who-sees/");
		const key = await createKey(prefix);
		const neighbour = await createKey(prefix);
		const unscoped = await createKey();
		const own = await subscribe({ url: `${hook("who-own").url}?token=own-secret` }, key.token);
		const neighbours = await subscribe({ url: `${hook("who-neighbour").url}?token=neighbour-secret` }, neighbour.token);
		const admins = await subscribe({ url: `${hook("who-admin").url}?token=admin-secret`, prefix });
		// The key's own job, with a callback URL that carries its receiver's token.
		const { jobId, eventId } = await finishedJob(`${prefix}a.png`, "succeeded", {
			callbackUrl: `${hook("who-cb").url}?token=callback-secret`,
			keyId: key.id,
		});
		await dispatchEvent(env.DB, eventId);

		const listed = async (token: string) =>
			(await parsed(await call("GET", "/v1/webhooks", { token }), pageOf(WebhookSubscription))).data.map((s) => s.id);
		expect(await listed(key.token)).toEqual([own.id]);
		expect(await listed(neighbour.token)).toEqual([neighbours.id]);
		expect(await listed(unscoped.token)).toEqual([]);
		expect(await listed(env.ADMIN_TOKEN)).toEqual(expect.arrayContaining([own.id, neighbours.id, admins.id]));

		for (const other of [neighbours.id, admins.id]) {
			for (const path of [`/v1/webhooks/${other}`, `/v1/webhooks/${other}/deliveries`]) {
				for (const token of [key.token, unscoped.token]) {
					const res = await call("GET", path, { token });
					expect(res.status, path).toBe(404);
					expect((await errorOf(res)).code).toBe("not_found");
				}
			}
		}
		expect((await call("GET", `/v1/webhooks/${own.id}`, { token: key.token })).status).toBe(200);
		const log = await call("GET", `/v1/webhooks/${own.id}/deliveries`, { token: key.token });
		expect((await parsed(log, pageOf(WebhookDelivery))).data.map((d) => d.job_id)).toEqual([jobId]);

		// A job's deliveries show the key its callback and its own subscription's, no other receiver.
		const ofJob = await call("GET", `/v1/jobs/${jobId}/deliveries`, { token: key.token });
		const seen = (await parsed(ofJob, pageOf(WebhookDelivery.extend({ subscription_id: z.string().nullable() })))).data;
		expect(seen.map((d) => d.subscription_id).sort()).toEqual([own.id, null].sort());
		expect(JSON.stringify(seen)).not.toMatch(/neighbour-secret|admin-secret/);
		// The neighbour sees the same job, but not the callback of a job it did not make.
		const ofJobNeighbour = await call("GET", `/v1/jobs/${jobId}/deliveries`, { token: neighbour.token });
		const neighbourSees = await ofJobNeighbour.text();
		expect(neighbourSees).toContain(neighbours.id);
		expect(neighbourSees).not.toMatch(/callback-secret|own-secret|admin-secret/);
		const ofJobAdmin = await call("GET", `/v1/jobs/${jobId}/deliveries`);
		const adminSees = await ofJobAdmin.text();
		expect(adminSees).toContain("neighbour-secret");
		expect(adminSees).toContain("admin-secret");
	});

	it("revoking a key disables the subscriptions it made (kept, key_revoked) and the fan-out skips them", async () => {
		const prefix = uniqueKey("revoke/");
		const key = await createKey(prefix);
		const other = await createKey(prefix);
		const revokedReceiver = hook("revoked");
		const keptReceiver = hook("kept");
		const doomed = await subscribe({ url: revokedReceiver.url }, key.token);
		const ofOtherKey = await subscribe({ url: keptReceiver.url }, other.token);
		const ofAdmin = await subscribe({ url: keptReceiver.url, prefix });

		await revokeKey(key.id);

		expect(await subscriptionRow(doomed.id)).toMatchObject({ status: "disabled", disabled_reason: "key_revoked" });
		const shown = await parsed(await call("GET", `/v1/webhooks/${doomed.id}`), WebhookSubscription);
		expect(shown).toMatchObject({ status: "disabled", disabled_reason: "key_revoked", key_id: key.id });
		for (const id of [ofOtherKey.id, ofAdmin.id]) {
			expect(await subscriptionRow(id)).toMatchObject({ status: "active", disabled_reason: null });
		}

		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const dispatched = await dispatchEvent(env.DB, eventId);
		expect(dispatched.kind).toBe("dispatched");
		const targets = await env.DB.prepare("SELECT subscription_id FROM webhook_deliveries WHERE event_id = ?")
			.bind(eventId)
			.all()
			.then((r) => r.results.map((row) => z.object({ subscription_id: z.string() }).parse(row).subscription_id));
		expect(targets.sort()).toEqual([ofOtherKey.id, ofAdmin.id].sort());
		if (dispatched.kind === "dispatched") {
			await runWebhooks(dispatched.deliveryIds.map((delivery_id) => ({ kind: "delivery", delivery_id })));
		}
		expect(await revokedReceiver.received()).toHaveLength(0);
		expect(await keptReceiver.received()).toHaveLength(2);
	});

	it("a delivery already queued for a revoked key's subscription is not sent", async () => {
		const prefix = uniqueKey("revoke-inflight/");
		const key = await createKey(prefix);
		const receiver = hook("inflight");
		const sub = await subscribe({ url: receiver.url }, key.token);
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		await revokeKey(key.id);
		await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);
		expect(await receiver.received()).toHaveLength(0);
		const delivery = await env.DB.prepare("SELECT status, last_error FROM webhook_deliveries WHERE id = ?")
			.bind(deliveryId)
			.first();
		expect(delivery).toEqual({ status: "failed", last_error: "The API key that owns this delivery was revoked" });
		expect((await subscriptionRow(sub.id)).disabled_reason).toBe("key_revoked");
	});

	it("only the creating key or the admin may delete, rotate or redeliver; another key gets 404", async () => {
		const prefix = uniqueKey("own/");
		const creator = await createKey(prefix);
		const neighbour = await createKey(prefix);
		const receiver = hook("own");
		await receiver.script([{ status: 400 }]);
		const sub = await subscribe({ url: receiver.url }, creator.token);
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);

		// The neighbour (same prefix) may neither see nor change it.
		for (const [method, path] of [
			["GET", `/v1/webhooks/${sub.id}`],
			["DELETE", `/v1/webhooks/${sub.id}`],
			["POST", `/v1/webhooks/${sub.id}/rotate-secret`],
			["POST", `/v1/webhooks/${sub.id}/deliveries/${deliveryId}/redeliver`],
		] as const) {
			const res = await call(method, path, { token: neighbour.token });
			expect(res.status, `${method} ${path}`).toBe(404);
			expect((await errorOf(res)).code).toBe("not_found");
		}
		const untouched = await subscriptionRow(sub.id);
		expect(untouched.previous_secret).toBeNull();
		expect(await receiver.received()).toHaveLength(1);

		expect((await call("POST", `/v1/webhooks/${sub.id}/deliveries/${deliveryId}/redeliver`)).status).toBe(202);
		expect((await call("POST", `/v1/webhooks/${sub.id}/rotate-secret`, { token: creator.token })).status).toBe(200);
		expect((await call("DELETE", `/v1/webhooks/${sub.id}`, { token: creator.token })).status).toBe(200);

		const adminDeletes = await subscribe({ url: receiver.url }, creator.token);
		expect((await call("DELETE", `/v1/webhooks/${adminDeletes.id}`)).status).toBe(200);
		const gone = await env.DB.prepare("SELECT count(*) AS n FROM webhook_subscriptions WHERE id IN (?, ?)")
			.bind(sub.id, adminDeletes.id)
			.first("n");
		expect(gone).toBe(0);
	});

	it("a key may have 20 subscriptions; the 21st answers 409 subscription_limit_reached", async () => {
		const prefix = uniqueKey("limit/");
		const key = await createKey(prefix);
		const created: string[] = [];
		for (let i = 0; i < 20; i++)
			created.push((await subscribe({ url: `http://127.0.0.1:9/limit-${i}` }, key.token)).id);
		const res = await call("POST", "/v1/webhooks", {
			token: key.token,
			json: { url: "http://127.0.0.1:9/limit-20", events: ["job.succeeded"] },
		});
		expect(res.status).toBe(409);
		const error = await errorOf(res);
		expect(error).toMatchObject({ code: "subscription_limit_reached", details: { limit: 20 } });
		const count = await env.DB.prepare("SELECT count(*) AS n FROM webhook_subscriptions WHERE key_id = ?")
			.bind(key.id)
			.first("n");
		expect(count).toBe(20);
		// The admin is not a key: no limit; and a deleted subscription frees its place.
		expect((await subscribe({ url: "http://127.0.0.1:9/limit-admin", prefix })).key_id).toBeNull();
		expect((await call("DELETE", `/v1/webhooks/${created[0]}`, { token: key.token })).status).toBe(200);
		const freed = await call("POST", "/v1/webhooks", {
			token: key.token,
			json: { url: "http://127.0.0.1:9/limit-freed", events: ["job.succeeded"] },
		});
		expect(freed.status).toBe(201);
		const after = await env.DB.prepare("SELECT count(*) AS n FROM webhook_subscriptions WHERE key_id = ?")
			.bind(key.id)
			.first("n");
		expect(after).toBe(20);
	});

	it("MAX_SUBSCRIPTIONS_PER_KEY sets the limit, counted per key", async () => {
		const prefix = uniqueKey("limit-var/");
		const [a, b] = [await createKey(prefix), await createKey(prefix)];
		const body = { url: "http://127.0.0.1:9/limit-var", events: ["job.failed"] };
		const vars = { MAX_SUBSCRIPTIONS_PER_KEY: "2" };
		const answers: number[] = [];
		for (const token of [a.token, a.token, a.token, b.token]) {
			answers.push((await callWith(vars, "POST", "/v1/webhooks", token, body)).status);
		}
		expect(answers).toEqual([201, 201, 409, 201]);
		const list = await parsed(await call("GET", "/v1/webhooks", { token: a.token }), pageOf(WebhookSubscription));
		const mine = list.data.filter((s) => s.key_id === a.id);
		expect(mine).toHaveLength(2);
		expect((await callWith(vars, "DELETE", `/v1/webhooks/${mine[0]?.id}`, a.token)).status).toBe(200);
		expect((await callWith(vars, "POST", "/v1/webhooks", a.token, body)).status).toBe(201);
	});
});

describe.concurrent("an endpoint that fails every attempt for 24 hours", () => {
	/** A subscription whose endpoint answers `answer`, with its failing clock set in D1, and one attempt of a new event. */
	async function attemptWithClock(label: string, answer: number, failingSince: number | null) {
		const prefix = uniqueKey(`${label}/`);
		const receiver = hook(label);
		await receiver.script([{ status: answer }]);
		const sub = await subscribe({ url: receiver.url, prefix });
		await env.DB.prepare("UPDATE webhook_subscriptions SET failing_since = ? WHERE id = ?")
			.bind(failingSince, sub.id)
			.run();
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		const before = Date.now();
		await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);
		return { sub, receiver, before, row: await subscriptionRow(sub.id) };
	}

	it("is disabled (endpoint_failing) by a failed attempt once its failures began 24 h ago", async () => {
		const { sub, receiver, row } = await attemptWithClock("failing25", 500, Date.now() - 25 * HOUR);
		expect(await receiver.received()).toHaveLength(1);
		expect(row).toMatchObject({ status: "disabled", disabled_reason: "endpoint_failing" });
		const shown = await parsed(await call("GET", `/v1/webhooks/${sub.id}`), WebhookSubscription);
		expect(shown).toMatchObject({ status: "disabled", disabled_reason: "endpoint_failing" });
	});

	it("stays active while its failures began less than 24 h ago, and the clock keeps its start", async () => {
		const since = Date.now() - 23 * HOUR;
		const { row } = await attemptWithClock("failing23", 503, since);
		expect(row).toMatchObject({ status: "active", disabled_reason: null, failing_since: since });
	});

	it("a first failure starts the clock", async () => {
		const { row, before } = await attemptWithClock("failing-first", 500, null);
		expect(row.status).toBe("active");
		expect(row.failing_since).toBeGreaterThanOrEqual(before);
		expect(row.failing_since).toBeLessThanOrEqual(Date.now());
	});

	it("a success in between resets the clock, so 24 h of history without one success is needed", async () => {
		const { row, receiver, sub } = await attemptWithClock("failing-reset", 200, Date.now() - 23.9 * HOUR);
		expect(verified(sub.secret, (await receiver.received())[0]!).type).toBe("job.succeeded");
		expect(row).toMatchObject({ status: "active", failing_since: null });
	});

	it("a 4xx that is not retried counts as a failure too", async () => {
		const { row } = await attemptWithClock("failing-400", 400, Date.now() - 24 * HOUR - 1000);
		expect(row).toMatchObject({ status: "disabled", disabled_reason: "endpoint_failing" });
	});
});
