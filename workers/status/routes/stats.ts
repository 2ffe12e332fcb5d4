/** `GET /v1/stats`: job counts, throughput and inference percentiles (limited to a scoped key's prefix). */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { LaneFigures, SCHEDULER_NAME } from "../../../shared/scheduling/lanes";
import type { LaneScheduler } from "../../../shared/scheduling/scheduler";
import { OutboxBacklog, readOutboxBacklog } from "../../../shared/webhooks/outbox";
import type { AppEnv } from "../app-env";
import { scopePrefix } from "../auth/authorisation";
import { readStats, Stats } from "../jobs/stats";
import { authenticated, errors, json } from "../responses";
import { readSettings } from "../settings";
import { validationHook } from "../validation";

/** The stats, with the webhook outbox's backlog (service-wide: null for scoped keys). */
const StatsWithOutbox = Stats.extend({
	webhook_outbox: OutboxBacklog.nullable().meta({
		description:
			"Webhook events waiting to be dispatched (service-wide; null for scoped keys). A growing age means dispatch is failing.",
	}),
	lanes: z.array(LaneFigures).nullable().meta({
		description:
			"Per lane (interactive: uploads, notifications, POST /v1/jobs; batch: batches' jobs) and rate limit: jobs waiting for a model slot, the oldest one's age, and the share of the limit used in the last minute (service-wide; null for scoped keys).",
	}),
}).meta({ id: "Stats" });

const statsRoute = createRoute({
	method: "get",
	path: "/v1/stats",
	operationId: "getStats",
	summary: "Service statistics",
	description:
		"Counts by status; over the last 5 minutes, hour and day: completions, throughput, inference p50/p95/p99. " +
		"Read from counters kept as jobs change (a bounded number of rows per request); percentiles over the 2,000 most recent completions. " +
		"The object may gain fields: clients ignore unknown ones.",
	security: authenticated,
	responses: { 200: json(StatsWithOutbox, "Statistics"), ...errors(401) },
});

export const statsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(statsRoute, async (c) => {
	const prefix = scopePrefix(c.get("principal"));
	// The scheduler is the consumer's class (bound with script_name): `wrangler types` cannot type it here.
	const scheduler = c.env.MODEL_SCHEDULER as unknown as DurableObjectNamespace<LaneScheduler>;
	const [stats, outbox, lanes] = await Promise.all([
		readStats(c.env.DB, prefix, readSettings(c.env).MODEL_CHAIN),
		prefix === null ? readOutboxBacklog(c.env.DB) : null,
		prefix === null ? scheduler.getByName(SCHEDULER_NAME).stats() : null,
	]);
	return c.json({ ...stats, webhook_outbox: outbox, lanes }, 200);
});
