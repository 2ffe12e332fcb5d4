/**
 * `GET /v1/jobs/{id}/deliveries`: the webhook deliveries of one job's event, for the dashboard's
 * job page. Each names its subscription (null: the job's own callback URL), so a client can
 * redeliver it through `POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver`. A key sees
 * its jobs' callback deliveries and the deliveries of the subscriptions it created, no other
 * receiver (their URLs may carry tokens); the admin sees every one.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { getJobRow } from "../../../shared/jobs/store";
import { WebhookDelivery } from "../../../shared/webhooks/schema";
import { notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { inScope } from "../auth/authorisation";
import { authenticated, errors, json } from "../responses";
import { validationHook } from "../validation";
import { listJobDeliveries } from "../webhooks/delivery-log";
import { callerOf } from "../webhooks/subscriptions";

const JobDelivery = WebhookDelivery.extend({
	subscription_id: z
		.string()
		.nullable()
		.meta({ description: "The subscription it went to; null for the job's own callback URL." }),
}).meta({ id: "JobWebhookDelivery" });

export const JobDeliveryList = z
	.object({
		data: z.array(JobDelivery).meta({ description: "Oldest first: one per target of the job's event." }),
		next_cursor: z.null().meta({ description: "Always null: a job's deliveries come in a single page." }),
	})
	.meta({ id: "JobWebhookDeliveryList" });

const listJobDeliveriesRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}/deliveries",
	operationId: "listJobDeliveries",
	summary: "A job's webhook deliveries and their attempts",
	description:
		"Empty until the job is finished (its event is made when it reaches a terminal state). An API key sees the callback delivery of a job it made (a callback URL may carry its receiver's token) and those of the subscriptions it created; the admin sees every one.",
	security: authenticated,
	request: { params: z.object({ id: z.string().min(1).meta({ example: "job_01JD2X6B8J3W4Q5R6S7T8V9W0X" }) }) },
	responses: { 200: json(JobDeliveryList, "The job's deliveries"), ...errors(401, 404) },
});

export const jobDeliveryRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
	listJobDeliveriesRoute,
	async (c) => {
		const { id } = c.req.valid("param");
		const principal = c.get("principal");
		const job = await getJobRow(c.env.DB, id);
		if (!job || !inScope(principal, job.key)) throw notFound(`Job ${id}`);
		const data = await listJobDeliveries(c.env.DB, id, callerOf(principal));
		return c.json({ data, next_cursor: null }, 200);
	},
);
