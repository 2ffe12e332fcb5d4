/** `GET /`: the dashboard page (workers/status/dashboard/page.ts). Public: signing in happens in the page. */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { DASHBOARD_HEADERS, DASHBOARD_HTML } from "../dashboard/page";
import { validationHook } from "../validation";

const dashboardRoute = createRoute({
	method: "get",
	path: "/",
	operationId: "getDashboard",
	summary: "The dashboard (HTML)",
	description:
		"A page that signs in with a token (kept in the tab's sessionStorage) and shows jobs, uploads, batches, " +
		"webhooks and statistics through this API. Served with a strict Content-Security-Policy.",
	security: [],
	responses: { 200: { description: "The page", content: { "text/html": { schema: z.string() } } } },
});

export const dashboardRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(dashboardRoute, (c) =>
	c.body(DASHBOARD_HTML, 200, DASHBOARD_HEADERS),
);
