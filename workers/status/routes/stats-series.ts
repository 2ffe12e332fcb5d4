/** `GET /v1/stats/series`: finished jobs and inference percentiles per bucket over a recent window. */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { scopePrefix } from "../auth/authorisation";
import { readStatsSeries, SeriesWindow, StatsSeries } from "../jobs/stats-series";
import { authenticated, errors, json } from "../responses";
import { validationHook } from "../validation";

const statsSeriesRoute = createRoute({
	method: "get",
	path: "/v1/stats/series",
	operationId: "getStatsSeries",
	summary: "Throughput and inference percentiles over time",
	description:
		"The window cut into equal buckets (`15m`: 30 s, `1h`: 1 min, `24h`: 15 min), each with the jobs that " +
		"finished in it and their inference-time p50/p95/p99. Limited to a scoped key's prefix.",
	security: authenticated,
	request: { query: z.object({ window: SeriesWindow.default("1h") }) },
	responses: { 200: json(StatsSeries, "The series"), ...errors(400, 401) },
});

export const statsSeriesRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
	statsSeriesRoute,
	async (c) => {
		const { window } = c.req.valid("query");
		return c.json(await readStatsSeries(c.env.DB, window, scopePrefix(c.get("principal"))), 200);
	},
);
