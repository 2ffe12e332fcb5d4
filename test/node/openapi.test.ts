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

	it("names every batch operation with its operationId", () => {
		const doc = status.openApiDocument() as unknown as {
			paths: Record<string, Record<string, { operationId?: string }>>;
		};
		const ids = Object.entries(doc.paths)
			.filter(([path]) => path.startsWith("/v1/batches"))
			.flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method} ${path}`, op.operationId]));
		expect(Object.fromEntries(ids)).toEqual({
			"post /v1/batches": "createBatch",
			"get /v1/batches": "listBatches",
			"get /v1/batches/{id}": "getBatch",
			"post /v1/batches/{id}/cancel": "cancelBatch",
			"get /v1/batches/{id}/results": "getBatchResults",
		});
	});
});
