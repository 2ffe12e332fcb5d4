/** `GET /v1/stats`: job counts, throughput and inference percentiles (limited to a scoped key's prefix). */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env";
import { scopePrefix } from "../auth/authorisation";
import { readStats, Stats } from "../jobs/stats";
import { authenticated, errors, json } from "../responses";
import { validationHook } from "../validation";

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
	responses: { 200: json(Stats, "Statistics"), ...errors(401) },
});

export const statsRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(statsRoute, async (c) =>
	c.json(await readStats(c.env.DB, scopePrefix(c.get("principal"))), 200),
);
