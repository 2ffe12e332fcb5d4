/**
 * The status API's OpenAPI document: valid OpenAPI 3.1 according to a real validator, fit for
 * client generators (Redocly's recommended ruleset, operation ids, security, servers), and listing
 * every route the router serves. Built with `openApiDocument()`, the function `/openapi.json` serves.
 */
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { Validator } from "@seriousme/openapi-schema-validator";
import { beforeAll, describe, expect, it } from "vitest";
import { toOpenApiPath } from "../../workers/status/method-not-allowed.ts";

/** What this test needs from workers/status/app.ts (imported at run time, so that the Node
 * typecheck does not pull in Workers-typed sources). */
interface Operation {
	operationId?: string;
	security?: Record<string, string[]>[];
	description?: string;
	parameters?: { name: string; in: string; description?: string }[];
}

interface Document {
	[field: string]: unknown;
	openapi: string;
	info: { description?: string };
	servers?: { url: string; description?: string }[];
	paths: Record<string, Record<string, Operation>>;
	webhooks?: Record<string, Record<string, Operation>>;
}

interface StatusApp {
	app: {
		routes: { method: string; path: string }[];
		request(url: string): Response | Promise<Response>;
	};
	openApiDocument(): Document;
}

let status: StatusApp;
beforeAll(async () => {
	status = (await import(new URL("../../workers/status/app.ts", import.meta.url).href)) as StatusApp;
});

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

describe("OpenAPI document for client generators", () => {
	const operations = () => {
		const doc = status.openApiDocument();
		return [...Object.entries(doc.paths), ...Object.entries(doc.webhooks ?? {})].flatMap(([path, item]) =>
			Object.entries(item).map(([method, op]) => ({ path, method, op })),
		);
	};

	it("passes Redocly's recommended ruleset with no error, and no warning beyond the accepted ones", async () => {
		const config = await createConfig({ extends: ["recommended"] });
		const problems = await lintFromString({
			source: JSON.stringify(status.openApiDocument()),
			absoluteRef: "openapi.json",
			config,
		});
		const show = (p: (typeof problems)[number]) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`;
		expect(problems.filter((p) => p.severity === "error").map(show)).toEqual([]);
		// Accepted: the project has no licence yet; localhost is the real `npm run dev` server; the
		// three public GETs (the document, liveness, the dashboard page) have no 4xx answer to document.
		expect(problems.filter((p) => p.severity === "warn").map((p) => `${p.ruleId} ${p.location[0]?.pointer}`)).toEqual([
			"info-license #/info",
			"no-server-example.com #/servers/0/url",
			"operation-4xx-response #/paths/~1openapi.json/get/responses",
			"operation-4xx-response #/paths/~1healthz/get/responses",
			"operation-4xx-response #/paths/~1/get/responses",
		]);
	});

	it("gives every operation and webhook a unique operationId", () => {
		const ids = operations().map(({ op }) => op.operationId);
		expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
		expect(new Set(ids).size).toBe(ids.length);
		expect(ids).toEqual(expect.arrayContaining(["uploadImage", "getJob", "listJobs", "createJob", "createWebhook"]));
	});

	it("says `security: []` on the public routes and bearer auth on every /v1 route", () => {
		for (const { path, op } of operations()) {
			const expected = path.startsWith("/v1/") ? [{ bearerAuth: [] }] : [];
			expect(op.security, path).toEqual(expected);
		}
	});

	it("names the servers: local development first, then a workers.dev deployment", () => {
		const servers = status.openApiDocument().servers ?? [];
		expect(servers.map((s) => s.url)).toEqual([
			"http://localhost:8787",
			"https://r2-captions-status.{subdomain}.workers.dev",
		]);
	});

	it("/openapi.json lists the origin it was fetched from as the first server", async () => {
		const res = await status.app.request("https://captions.example.com/openapi.json");
		const doc = (await res.json()) as Document;
		expect(doc.servers?.map((s) => s.url)).toEqual([
			"https://captions.example.com",
			"http://localhost:8787",
			"https://r2-captions-status.{subdomain}.workers.dev",
		]);
	});

	it("documents that a key's slashes are sent percent-encoded (%2F) in {key}", () => {
		const doc = status.openApiDocument();
		const upload = doc.paths["/v1/images/{key}"]?.put;
		const key = upload?.parameters?.find((p) => p.name === "key" && p.in === "path");
		expect(key?.description).toContain("%2F");
		expect(upload?.description).toContain("photos%2Fcat.jpg");
		expect(doc.info.description).toContain("%2F");
	});

	it("lists the image content types an upload may declare, as well as application/octet-stream", () => {
		const doc = status.openApiDocument() as unknown as {
			paths: Record<string, { put?: { requestBody?: { content: Record<string, unknown> } } }>;
		};
		const content = doc.paths["/v1/images/{key}"]?.put?.requestBody?.content ?? {};
		expect(Object.keys(content)).toEqual(
			expect.arrayContaining(["image/jpeg", "image/png", "image/webp", "image/gif", "application/octet-stream"]),
		);
		expect(content["image/png"]).toEqual({ schema: { type: "string", format: "binary" } });
	});

	it("describes the 415 of a JSON operation as a Content-Type that is not JSON, not only an unsupported image", () => {
		const doc = status.openApiDocument() as unknown as {
			paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>>;
		};
		for (const [path, method] of [
			["/v1/jobs", "post"],
			["/v1/keys", "post"],
			["/v1/captions/{key}", "put"],
			["/v1/images/{key}", "put"],
		] as const) {
			const description = doc.paths[path]?.[method]?.responses["415"]?.description;
			expect(description, `${method} ${path}`).toContain("JSON body sent with another `Content-Type`");
			expect(description, `${method} ${path}`).toContain("not JPEG, PNG, WebP, GIF or BMP");
		}
	});

	it("documents 503 on every /v1 operation: any of them answers secrets_key_mismatch when the sealing key is wrong", () => {
		const doc = status.openApiDocument() as unknown as {
			paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>>;
		};
		const v1 = Object.entries(doc.paths).filter(([path]) => path.startsWith("/v1/"));
		expect(v1.length).toBeGreaterThan(10);
		for (const [path, item] of v1) {
			for (const [method, op] of Object.entries(item)) {
				expect(op.responses["503"]?.description ?? "no 503", `${method} ${path}`).toContain("secrets_key_mismatch");
			}
		}
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
			"post /v1/batches/{id}/start": "startBatch",
			"get /v1/batches/{id}/results": "getBatchResults",
		});
	});

	it("documents the limits: 429 with Retry-After on every /v1 operation, 413 on JSON bodies, 411 and 413 on uploads", () => {
		const doc = status.openApiDocument() as unknown as {
			paths: Record<
				string,
				Record<
					string,
					{
						requestBody?: { content: Record<string, unknown> };
						responses: Record<string, { headers?: Record<string, { schema?: unknown }> }>;
					}
				>
			>;
		};
		const ops = Object.entries(doc.paths).flatMap(([path, item]) =>
			Object.entries(item).map(([method, op]) => ({ at: `${method} ${path}`, path, op })),
		);
		const v1 = ops.filter((o) => o.path.startsWith("/v1/"));
		expect(v1.length).toBeGreaterThan(10);
		for (const { at, op } of v1) {
			expect(op.responses["429"]?.headers?.["Retry-After"]?.schema, at).toEqual({ type: "integer", minimum: 1 });
			if (op.requestBody?.content["application/json"]) {
				expect(op.responses["413"], at).toBeDefined();
				// A body that is not JSON (or not UTF-8) is refused before the route's own checks.
				expect(Object.keys(op.responses), at).toEqual(expect.arrayContaining(["400", "415"]));
			}
		}
		expect(ops.filter((o) => !o.path.startsWith("/v1/")).every((o) => !("429" in o.op.responses))).toBe(true);
		const upload = doc.paths["/v1/images/{key}"]?.put;
		expect(Object.keys(upload?.responses ?? {})).toEqual(expect.arrayContaining(["411", "413", "415", "429"]));
		expect(doc.paths["/v1/jobs"]?.post?.responses["413"]).toBeDefined();
	});
});
