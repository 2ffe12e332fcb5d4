import { describe, expect, it } from "vitest";
import { call, errorOf, OpenApiDocument, parsed } from "./support";

describe("routing", () => {
	it("GET /healthz answers without a token", async () => {
		const res = await call("GET", "/healthz", { token: null });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual({ status: "ok" });
	});

	it("GET /openapi.json answers an OpenAPI 3.1 document without a token", async () => {
		const res = await call("GET", "/openapi.json", { token: null });
		expect(res.status).toBe(200);
		const doc = await parsed(res, OpenApiDocument);
		expect(doc.openapi).toBe("3.1.0");
		expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/images/{key}", "/v1/jobs", "/v1/jobs/{id}"]));
	});

	it("an unknown route is a 404 with the error envelope", async () => {
		const res = await call("GET", "/v1/nothing-here");
		expect(res.status).toBe(404);
		expect(await errorOf(res)).toMatchObject({ code: "not_found" });
		expect((await call("GET", "/elsewhere", { token: null })).status).toBe(404);
	});

	it("a wrong method on a known path is a 405 that lists the allowed methods", async () => {
		const res = await call("DELETE", "/v1/jobs");
		expect(res.status).toBe(405);
		expect(res.headers.get("allow")).toBe("GET, HEAD, POST");
		expect(await errorOf(res)).toMatchObject({
			code: "method_not_allowed",
			details: { allow: ["GET", "HEAD", "POST"] },
		});

		const put = await call("POST", "/v1/images/a/b/c.png");
		expect(put.status).toBe(405);
		expect(put.headers.get("allow")).toBe("GET, HEAD, PUT");

		const keys = await call("PUT", "/v1/keys/key_1");
		expect(keys.status).toBe(405);
		expect(keys.headers.get("allow")).toBe("DELETE");
	});
});
