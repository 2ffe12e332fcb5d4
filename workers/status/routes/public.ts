/** Unauthenticated routes: liveness. (`/openapi.json` lives in app.ts, beside the app it describes.) */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { json } from "../responses";
import { validationHook } from "../validation";

const Health = z.object({ status: z.literal("ok") }).meta({ id: "Health" });

const healthRoute = createRoute({
	method: "get",
	path: "/healthz",
	operationId: "getHealth",
	security: [],
	summary: "Liveness",
	description: "Answers without touching D1 or R2, and without authentication.",
	responses: { 200: json(Health, "The Worker is running") },
});

export const publicRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(healthRoute, (c) =>
	c.json({ status: "ok" as const }, 200),
);
