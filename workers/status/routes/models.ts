/** `GET /v1/models`: the model chain with each model's health (admin and scoped keys alike). */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { ModelHealthRegistry } from "../../../shared/models/health-registry";
import { listModels, ModelList } from "../../../shared/models/model-list";
import type { AppEnv } from "../app-env";
import { authenticated, errors, json } from "../responses";
import { readSettings } from "../settings";
import { validationHook } from "../validation";

const listModelsRoute = createRoute({
	method: "get",
	path: "/v1/models",
	operationId: "listModels",
	summary: "Models and their health",
	description:
		"The models of MODEL_CHAIN in the order they are tried, each with its status as every consumer sees it (ok, gone, circuit_open), since when, and its calls, failures and median latency over the last hour.",
	security: authenticated,
	responses: { 200: json(ModelList, "The model chain"), ...errors(401) },
});

export const modelRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook }).openapi(
	listModelsRoute,
	async (c) => {
		// The registry is the consumer's class (bound with script_name), which `wrangler types`
		// cannot type from this Worker's config.
		const registry = c.env.MODEL_HEALTH as unknown as DurableObjectNamespace<ModelHealthRegistry>;
		return c.json(await listModels(registry, readSettings(c.env).MODEL_CHAIN), 200);
	},
);
