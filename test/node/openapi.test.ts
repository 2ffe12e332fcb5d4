/**
 * The status API's OpenAPI document: valid OpenAPI 3.1 according to a real validator, and listing
 * every route the router serves. Built with `openApiDocument()`, the function `/openapi.json` serves.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { beforeAll, describe, expect, it } from "vitest";

/** What this test needs from workers/status/app.ts (imported at run time, so that the Node
 * typecheck does not pull in Workers-typed sources). */
interface StatusApp {
	app: { routes: { method: string; path: string }[] };
	openApiDocument(): { openapi: string; paths: Record<string, Record<string, unknown>> };
}

let status: StatusApp;
beforeAll(async () => {
	status = (await import(new URL("../../workers/status/app.ts", import.meta.url).href)) as StatusApp;
});

/** Hono's `/v1/jobs/:id` and `/v1/images/:key{.+}` in OpenAPI spelling. */
const toOpenApiPath = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

describe("OpenAPI document", () => {
	it("is a valid OpenAPI 3.1 document", async () => {
		const doc = status.openApiDocument();
		const validator = new Validator();
		const result = await validator.validate(doc);
		expect(result.errors ?? []).toEqual([]);
		expect(result.valid).toBe(true);
		expect(validator.version).toBe("3.1");
	});

	it("documents every route the router serves, with its method", () => {
		const doc = status.openApiDocument();
		const served = status.app.routes
			.filter((r) => r.method !== "ALL")
			.map((r) => `${r.method.toLowerCase()} ${toOpenApiPath(r.path)}`);
		const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
			Object.keys(item).map((method) => `${method} ${path}`),
		);
		expect(served.length).toBeGreaterThanOrEqual(10);
		expect(documented.sort()).toEqual([...new Set(served)].sort());
	});

	it("reuses the shared Job schema as a component instead of copying it", () => {
		const doc = status.openApiDocument() as unknown as {
			components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
			paths: Record<
				string,
				Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>
			>;
		};
		expect(Object.keys(doc.components.schemas.Job?.properties ?? {})).toContain("metrics");
		const getJob = doc.paths["/v1/jobs/{id}"]?.get?.responses["200"]?.content["application/json"]?.schema;
		expect(getJob).toEqual({ $ref: "#/components/schemas/Job" });
	});

	it("documents GET /v1/models as listModels, with exactly the fields of a model's health", () => {
		const doc = status.openApiDocument() as unknown as {
			components: {
				schemas: Record<string, { properties?: Record<string, { enum?: string[] }>; required?: string[] }>;
			};
			paths: Record<string, Record<string, { operationId?: string; security?: unknown[] }>>;
		};
		const route = doc.paths["/v1/models"]?.get;
		expect(route?.operationId).toBe("listModels");
		expect(route?.security).toEqual([{ bearerAuth: [] }]);
		expect(Object.keys(doc.components.schemas.ModelList?.properties ?? {})).toEqual(["data"]);
		const model = doc.components.schemas.Model;
		const fields = ["id", "task", "position", "status", "since", "calls_1h", "failures_1h", "latency_ms_p50_1h"];
		expect(Object.keys(model?.properties ?? {})).toEqual(fields);
		expect(model?.required?.sort()).toEqual([...fields].sort());
		expect(doc.components.schemas.ModelHealthStatus).toMatchObject({ enum: ["ok", "gone", "circuit_open"] });
	});
});
