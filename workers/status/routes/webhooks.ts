/**
 * Webhook subscription endpoints (docs/api.md): create (the `whsec_` secret is in this response
 * only), list, get, delete, secret rotation, the delivery log and manual redelivery. A key limited
 * to prefix `p` creates subscriptions only under `p` (404 otherwise). A key lists, reads and changes
 * only the subscriptions it created (their URLs may carry the receiver's tokens); the admin every
 * one. For another key a subscription does not exist (404). A key may have MAX_SUBSCRIPTIONS_PER_KEY
 * subscriptions (409 `subscription_limit_reached` beyond), and one whose key is revoked while it
 * creates one gets 401, with nothing created. Every URL
 * that will receive webhooks passes the SSRF check first (`requireSafeWebhookUrl` in
 * ../validation.ts).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { decimalInt } from "../../../shared/decimal-int";
import { sendOrLeaveToSweeper } from "../../../shared/queue/send";
import type { DeliveryMessage } from "../../../shared/queue/webhook-deliveries";
import {
	CreatedWebhookSubscription,
	RotatedWebhookSecret,
	WebhookDelivery,
	WebhookEventType,
	WebhookSubscription,
} from "../../../shared/webhooks/schema";
import { ApiError, ErrorBody, invalidParam, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { INVALID_TOKEN, unauthorized } from "../auth/authenticate";
import { scopePrefix } from "../auth/authorisation";
import { IdempotencyHeaders, idempotent } from "../idempotency";
import { authenticated, errors, json } from "../responses";
import { readSettings, sealingKey } from "../settings";
import { requireSafeWebhookUrl, validationHook } from "../validation";
import { deliveryCursor, listDeliveries, reopenDelivery } from "../webhooks/delivery-log";
import {
	callerOf,
	createSubscription,
	deleteSubscription,
	getOwnedSubscriptionRow,
	listSubscriptions,
	rotateSecret,
	toSubscription,
} from "../webhooks/subscriptions";

const CreateWebhookBody = z
	.strictObject({
		url: z.string().max(2048).meta({ example: "https://example.com/hooks/captions" }),
		events: z
			.array(WebhookEventType)
			.min(1)
			.refine((events) => new Set(events).size === events.length, "Events must not repeat"),
		prefix: z
			.string()
			.min(1)
			.max(1024)
			.optional()
			.meta({ description: "Only jobs whose object key starts with this. A scoped key's default is its prefix." }),
	})
	.meta({ id: "CreateWebhook" });

const WebhookList = z
	.object({
		data: z.array(WebhookSubscription),
		next_cursor: z.null().meta({ description: "Always null: subscriptions come in a single page." }),
	})
	.meta({ id: "WebhookList" });

const DeliveryList = z
	.object({
		data: z.array(WebhookDelivery),
		next_cursor: z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null on the last." }),
	})
	.meta({ id: "WebhookDeliveryList" });

const IdParams = z.object({ id: z.string().min(1).meta({ example: "wh_01JD2X6B8J3W4Q5R6S7T8V9W0X" }) });

/** Every route of one subscription: another key's subscription does not exist for the caller. */
const notOwned = json(
	ErrorBody,
	"Not found, or created by another key: a key reaches only the subscriptions it created, the admin every one",
);

const createWebhookRoute = createRoute({
	method: "post",
	path: "/v1/webhooks",
	operationId: "createWebhook",
	summary: "Subscribe a URL to job events",
	security: authenticated,
	middleware: idempotent,
	request: {
		headers: IdempotencyHeaders,
		body: { required: true, content: { "application/json": { schema: CreateWebhookBody } } },
	},
	responses: {
		201: json(CreatedWebhookSubscription, "The subscription, with its signing secret shown this once"),
		...errors(400, 404, 415, 503),
		401: json(
			ErrorBody,
			"`unauthorized`: missing, wrong or revoked token, also when the key is revoked while this request runs (nothing is created)",
		),
		409: json(
			ErrorBody,
			"`subscription_limit_reached`: the key already has MAX_SUBSCRIPTIONS_PER_KEY subscriptions (20 by default; `details.limit`). The admin token has no limit.",
		),
	},
});

const listWebhooksRoute = createRoute({
	method: "get",
	path: "/v1/webhooks",
	operationId: "listWebhooks",
	summary: "List webhook subscriptions (a key: the ones it created; the admin: all)",
	security: authenticated,
	responses: {
		200: json(WebhookList, "The caller's subscriptions (the admin: every one), newest first"),
		...errors(401),
	},
});

const getWebhookRoute = createRoute({
	method: "get",
	path: "/v1/webhooks/{id}",
	operationId: "getWebhook",
	summary: "Get a webhook subscription (its creator or the admin)",
	security: authenticated,
	request: { params: IdParams },
	responses: { 200: json(WebhookSubscription, "The subscription"), ...errors(401), 404: notOwned },
});

const deleteWebhookRoute = createRoute({
	method: "delete",
	path: "/v1/webhooks/{id}",
	operationId: "deleteWebhook",
	summary: "Delete a webhook subscription and its delivery log (its creator or the admin)",
	security: authenticated,
	request: { params: IdParams },
	responses: { 200: json(WebhookSubscription, "The deleted subscription"), ...errors(401), 404: notOwned },
});

const listDeliveriesRoute = createRoute({
	method: "get",
	path: "/v1/webhooks/{id}/deliveries",
	operationId: "listWebhookDeliveries",
	summary: "A subscription's deliveries and their attempts, newest first (its creator or the admin)",
	security: authenticated,
	request: {
		params: IdParams,
		query: z.object({
			limit: decimalInt(1, 100).default(20),
			cursor: z.string().optional().meta({ description: "`next_cursor` of the previous page." }),
		}),
	},
	responses: { 200: json(DeliveryList, "A page of deliveries"), ...errors(400, 401), 404: notOwned },
});

const redeliverRoute = createRoute({
	method: "post",
	path: "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
	operationId: "redeliverWebhookDelivery",
	summary: "Send a delivery again (same webhook-id; the subscription's creator or the admin)",
	security: authenticated,
	request: { params: IdParams.extend({ delivery_id: z.string().min(1) }) },
	responses: {
		202: json(WebhookDelivery, "The delivery, queued again"),
		...errors(401, 409),
		404: notOwned,
	},
});

const rotateSecretRoute = createRoute({
	method: "post",
	path: "/v1/webhooks/{id}/rotate-secret",
	operationId: "rotateWebhookSecret",
	summary: "Give a subscription a new signing secret (its creator or the admin)",
	description:
		"Returns the new `whsec_` secret, shown this once. For 24 hours every delivery carries two signatures in `webhook-signature` (space-separated): one with the new secret and one with the previous, so a receiver holding either accepts it; after that, only the new one.",
	security: authenticated,
	request: { params: IdParams },
	responses: {
		200: json(RotatedWebhookSecret, "The subscription and its new secret"),
		...errors(401, 503),
		404: notOwned,
	},
});

export const webhookRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(createWebhookRoute, async (c) => {
		const body = c.req.valid("json");
		const principal = c.get("principal");
		const scope = scopePrefix(principal);
		const prefix = body.prefix ?? scope;
		// A scoped key may only watch keys it can see; anything else does not exist for it.
		if (scope !== null && (prefix === null || !prefix.startsWith(scope))) {
			throw new ApiError(404, "not_found", `No objects under prefix ${prefix} are visible to this key`);
		}
		const settings = readSettings(c.env);
		const url = requireSafeWebhookUrl(settings.DEPLOY_MODE, body.url, "url", "body");
		const { keyId } = callerOf(principal);
		const limit = settings.MAX_SUBSCRIPTIONS_PER_KEY;
		const result = await createSubscription(
			c.env.DB,
			{ url, events: body.events, prefix, keyId },
			{ sealingKey: sealingKey(c.env), maxPerKey: limit },
		);
		if (result.kind === "key-revoked") throw unauthorized(INVALID_TOKEN);
		if (result.kind === "limit-reached") {
			throw new ApiError(
				409,
				"subscription_limit_reached",
				`This key already has ${limit} webhook subscriptions, the most one key may have: delete one first`,
				{ limit },
			);
		}
		return c.json(result.subscription, 201);
	})
	.openapi(listWebhooksRoute, async (c) => {
		const { data } = await listSubscriptions(c.env.DB, callerOf(c.get("principal")));
		return c.json({ data, next_cursor: null }, 200);
	})
	.openapi(getWebhookRoute, async (c) => {
		const { id } = c.req.valid("param");
		const row = await getOwnedSubscriptionRow(c.env.DB, id, callerOf(c.get("principal")));
		if (!row) throw notFound(`Webhook ${id}`);
		return c.json(toSubscription(row), 200);
	})
	.openapi(deleteWebhookRoute, async (c) => {
		const { id } = c.req.valid("param");
		const row = await deleteSubscription(c.env.DB, id, callerOf(c.get("principal")));
		if (!row) throw notFound(`Webhook ${id}`);
		return c.json(toSubscription(row), 200);
	})
	.openapi(rotateSecretRoute, async (c) => {
		const { id } = c.req.valid("param");
		const rotated = await rotateSecret(c.env.DB, id, callerOf(c.get("principal")), sealingKey(c.env));
		if (!rotated) throw notFound(`Webhook ${id}`);
		return c.json({ ...toSubscription(rotated.row), secret: rotated.secret }, 200);
	})
	.openapi(listDeliveriesRoute, async (c) => {
		const { id } = c.req.valid("param");
		const q = c.req.valid("query");
		const after = q.cursor === undefined ? null : deliveryCursor.decode(q.cursor);
		if (after === null && q.cursor !== undefined) {
			throw invalidParam("cursor", "query", "Not a cursor returned by this API");
		}
		const row = await getOwnedSubscriptionRow(c.env.DB, id, callerOf(c.get("principal")));
		if (!row) throw notFound(`Webhook ${id}`);
		const page = await listDeliveries(c.env.DB, id, q.limit, after);
		return c.json({ data: page.data, next_cursor: page.nextCursor }, 200);
	})
	.openapi(redeliverRoute, async (c) => {
		const { id, delivery_id } = c.req.valid("param");
		const row = await getOwnedSubscriptionRow(c.env.DB, id, callerOf(c.get("principal")));
		if (!row) throw notFound(`Webhook ${id}`);
		if (row.status === "disabled") {
			throw new ApiError(409, "subscription_disabled", `Webhook ${id} is disabled: ${row.disabled_reason}`);
		}
		const result = await reopenDelivery(c.env.DB, id, delivery_id);
		switch (result.kind) {
			case "missing":
				throw notFound(`Delivery ${delivery_id}`);
			case "pending":
				throw new ApiError(409, "delivery_pending", `Delivery ${delivery_id} is still being attempted`);
			case "redelivered": {
				const message: DeliveryMessage = { kind: "delivery", delivery_id };
				await sendOrLeaveToSweeper(
					c.env.WEBHOOK_DELIVERIES,
					{ body: message, contentType: "json" },
					{ queue: "webhook-deliveries", delivery_id },
				);
				return c.json(result.delivery, 202);
			}
		}
	});
