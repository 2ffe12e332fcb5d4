/**
 * `GET /v1/models`: the configured chain with each model's health as the registry Durable Object
 * (shared/models/health-registry.ts) knows it. The zod schema is the response's single source of
 * truth for the handler and the OpenAPI document. Free of `cloudflare:*` imports (the status app is
 * also loaded in Node to build its OpenAPI document).
 */
import { z } from "zod";
import type { ModelHealthRegistry } from "./health-registry";
import { MODEL_TASKS } from "./input-schemas";
import type { ModelAdapter } from "./types";

/** The one registry every Worker talks to. */
export const HEALTH_REGISTRY_NAME = "models";

export const ModelHealthStatus = z.enum(["ok", "gone", "circuit_open"]).meta({
	id: "ModelHealthStatus",
	description: "ok: called; gone: skipped (this account cannot use it); circuit_open: skipped after repeated failures",
});

export const ModelEntry = z
	.object({
		id: z.string().meta({ example: "@cf/moondream/moondream3.1-9B-A2B" }),
		task: z.enum(MODEL_TASKS).meta({ description: "Workers AI task type; each has its own rate limit." }),
		position: z.number().int().min(1).meta({ description: "Place in MODEL_CHAIN: 1 is tried first." }),
		status: ModelHealthStatus,
		since: z.iso
			.datetime()
			.nullable()
			.meta({ description: "When the model entered its status; null if no call has told anything yet." }),
		calls_1h: z.number().int().meta({ description: "Calls made to the model in the last hour." }),
		failures_1h: z.number().int().meta({ description: "Of those, calls that answered an error." }),
		latency_ms_p50_1h: z
			.number()
			.int()
			.nullable()
			.meta({ description: "Median latency of the successful calls of the last hour; null without one." }),
	})
	.meta({ id: "Model" });

export const ModelList = z.object({ data: z.array(ModelEntry) }).meta({ id: "ModelList" });
export type ModelList = z.infer<typeof ModelList>;

/** What the registry knows of one model: an entry without its place in the chain. */
export type ModelHealthFigures = Omit<z.infer<typeof ModelEntry>, "task" | "position">;

export async function listModels(
	registry: DurableObjectNamespace<ModelHealthRegistry>,
	chain: readonly ModelAdapter[],
): Promise<ModelList> {
	const figures = await registry.getByName(HEALTH_REGISTRY_NAME).figures(chain.map((a) => a.id));
	return {
		data: chain.map((adapter, i) => {
			const f = figures[i] as ModelHealthFigures;
			return { ...f, id: adapter.id, task: adapter.task, position: i + 1 };
		}),
	};
}
