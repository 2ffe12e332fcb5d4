/** The /v1/webhooks endpoints: subscriptions, scoped keys, the delivery log and redelivery. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { CreatedWebhookSubscription, WebhookDelivery, WebhookSubscription } from "../../shared/webhooks/schema";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import { call, createKey, errorOf, invalidFields, OpenApiDocument, pageOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import {
	deliveriesOf,
	dispatchOne,
	finishedJob,
	hook,
	runWebhooks,
	subscribe,
	verified,
	waitForSettledDelivery,
} from "./support";

describe.concurrent("webhook subscriptions", () => {
	it("creates a subscription and shows its whsec_ secret only in the creation response", async () => {
		const prefix = uniqueKey("api/");
		const res = await call("POST", "/v1/webhooks", {
			json: { url: "http://127.0.0.1:9/hook", events: ["job.succeeded"], prefix },
		});
		expect(res.status).toBe(201);
		const created = await parsed(res, CreatedWebhookSubscription);
		expect(created).toMatchObject({
			id: expect.stringMatching(/^wh_/),
			url: "http://127.0.0.1:9/hook",
			events: ["job.succeeded"],
			prefix,
			status: "active",
			secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{32}$/),
		});

		const oneRes = await call("GET", `/v1/webhooks/${created.id}`);
		expect(await oneRes.clone().json()).not.toHaveProperty("secret");
		const one = await parsed(oneRes, WebhookSubscription);
		expect(one).toEqual({ ...created, secret: undefined });
		const listRes = await call("GET", "/v1/webhooks");
		// The raw body, since parsing would drop a field the schema does not know.
		expect(await listRes.clone().text()).not.toContain(created.secret);
		const list = await parsed(listRes, pageOf(WebhookSubscription));
		expect(list.data.find((s) => s.id === created.id)).toEqual(one);
	});

	it("validates the body, naming each bad field", async () => {
		const res = await call("POST", "/v1/webhooks", { json: { url: "http://127.0.0.1:9/", events: ["job.started"] } });
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(["events.0"]);
		const empty = await call("POST", "/v1/webhooks", { json: { url: "http://127.0.0.1:9/", events: [] } });
		expect(await invalidFields(empty)).toEqual(["events"]);
		const missing = await call("POST", "/v1/webhooks", { json: { events: ["job.failed"] } });
		expect(await invalidFields(missing)).toEqual(["url"]);
	});

	it("deletes a subscription with its delivery log; it is then gone", async () => {
		const prefix = uniqueKey("delete/");
		const sub = await subscribe({ url: hook("deleted").url, prefix });
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		await dispatchEvent(env.DB, eventId);
		expect(await deliveriesOf(sub.id)).toHaveLength(1);

		const res = await call("DELETE", `/v1/webhooks/${sub.id}`);
		expect(res.status).toBe(200);
		expect(await res.json()).toMatchObject({ id: sub.id, prefix });
		expect((await call("GET", `/v1/webhooks/${sub.id}`)).status).toBe(404);
		expect((await call("DELETE", `/v1/webhooks/${sub.id}`)).status).toBe(404);
		expect((await call("GET", `/v1/webhooks/${sub.id}/deliveries`)).status).toBe(404);
		const left = await env.DB.prepare("SELECT count(*) AS n FROM webhook_deliveries WHERE subscription_id = ?")
			.bind(sub.id)
			.first("n");
		expect(left).toBe(0);
	});

	it("a scoped key sees and creates only subscriptions under its prefix; others answer 404", async () => {
		const base = uniqueKey("scope/");
		const key = await createKey(`${base}mine/`);
		const mine = await subscribe({ url: hook("mine").url, prefix: `${base}mine/photos/` }, key.token);
		const defaulted = await subscribe({ url: hook("defaulted").url }, key.token);
		expect(defaulted.prefix).toBe(`${base}mine/`);
		const theirs = await subscribe({ url: hook("theirs").url, prefix: `${base}theirs/` });

		const outside = await call("POST", "/v1/webhooks", {
			token: key.token,
			json: { url: hook("x").url, events: ["job.failed"], prefix: `${base}theirs/` },
		});
		expect(outside.status).toBe(404);
		expect((await errorOf(outside)).code).toBe("not_found");

		const list = await parsed(await call("GET", "/v1/webhooks", { token: key.token }), pageOf(WebhookSubscription));
		expect(list.data.map((s) => s.id).sort()).toEqual([mine.id, defaulted.id].sort());
		for (const [method, path] of [
			["GET", `/v1/webhooks/${theirs.id}`],
			["GET", `/v1/webhooks/${theirs.id}/deliveries`],
			["DELETE", `/v1/webhooks/${theirs.id}`],
			["POST", `/v1/webhooks/${theirs.id}/deliveries/msg_x/redeliver`],
		] as const) {
			expect((await call(method, path, { token: key.token })).status, `${method} ${path}`).toBe(404);
		}
		expect((await call("GET", `/v1/webhooks/${theirs.id}`)).status).toBe(200);
		expect((await call("GET", `/v1/webhooks/${mine.id}`, { token: key.token })).status).toBe(200);
	});

	it("redelivery re-sends a delivery with the same webhook-id and logs a new attempt", async () => {
		const prefix = uniqueKey("redeliver/");
		const receiver = hook("redeliver");
		await receiver.script([{ status: 400 }]);
		const sub = await subscribe({ url: receiver.url, prefix });
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		await runWebhooks([{ kind: "delivery", delivery_id: deliveryId }]);
		expect((await deliveriesOf(sub.id))[0]?.status).toBe("failed");

		const res = await call("POST", `/v1/webhooks/${sub.id}/deliveries/${deliveryId}/redeliver`);
		expect(res.status).toBe(202);
		expect(await res.json()).toMatchObject({ id: deliveryId, status: "pending" });

		const requests = await receiver.waitFor(2);
		expect(requests.map((r) => r.headers["webhook-id"])).toEqual([deliveryId, deliveryId]);
		expect(verified(sub.secret, requests[1]!)).toEqual(verified(sub.secret, requests[0]!));
		const delivery = await waitForSettledDelivery(sub.id);
		expect(delivery).toMatchObject({ id: deliveryId, status: "succeeded", attempts: 2 });
		expect(delivery.attempt_log.map((a) => [a.attempt, a.status_code])).toEqual([
			[1, 400],
			[2, 200],
		]);
	});

	it("redelivery of a delivery still in progress answers 409; of an unknown one 404", async () => {
		const prefix = uniqueKey("redeliver409/");
		const sub = await subscribe({ url: hook("pending").url, prefix });
		const { eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);

		const res = await call("POST", `/v1/webhooks/${sub.id}/deliveries/${deliveryId}/redeliver`);
		expect(res.status).toBe(409);
		expect((await errorOf(res)).code).toBe("delivery_pending");
		const unknown = await call("POST", `/v1/webhooks/${sub.id}/deliveries/msg_NOPE/redeliver`);
		expect(unknown.status).toBe(404);
	});

	it("the delivery log pages newest first with a cursor", async () => {
		const prefix = uniqueKey("pages/");
		const sub = await subscribe({ url: hook("pages").url, prefix });
		for (const name of ["a", "b", "c"]) {
			const { eventId } = await finishedJob(`${prefix}${name}.png`, "succeeded");
			await dispatchEvent(env.DB, eventId);
		}
		const first = await parsed(await call("GET", `/v1/webhooks/${sub.id}/deliveries?limit=2`), pageOf(WebhookDelivery));
		expect(first.data).toHaveLength(2);
		expect(first.next_cursor).not.toBeNull();
		const second = await parsed(
			await call("GET", `/v1/webhooks/${sub.id}/deliveries?limit=2&cursor=${first.next_cursor}`),
			pageOf(WebhookDelivery),
		);
		expect(second.data).toHaveLength(1);
		expect(second.next_cursor).toBeNull();
		const all = [...first.data, ...second.data].map((d) => d.id);
		expect(new Set(all).size).toBe(3);
		expect(all).toEqual([...all].sort().reverse());
		const bad = await call("GET", `/v1/webhooks/${sub.id}/deliveries?cursor=nonsense!`);
		expect(await invalidFields(bad)).toEqual(["cursor"]);
	});

	it("every webhook route is in the OpenAPI document", async () => {
		const doc = await parsed(await call("GET", "/openapi.json", { token: null }), OpenApiDocument);
		expect(Object.keys(doc.paths["/v1/webhooks"] ?? {}).sort()).toEqual(["get", "post"]);
		expect(Object.keys(doc.paths["/v1/webhooks/{id}"] ?? {}).sort()).toEqual(["delete", "get"]);
		expect(Object.keys(doc.paths["/v1/webhooks/{id}/deliveries"] ?? {})).toEqual(["get"]);
		expect(Object.keys(doc.paths["/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver"] ?? {})).toEqual(["post"]);
	});
});
