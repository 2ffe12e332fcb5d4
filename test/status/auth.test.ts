/**
 * The auth matrix: every route × (no token, wrong token, revoked key, key scoped inside and outside
 * the resource's prefix, admin). Unauthenticated cases are generated from the router's own route
 * table, so a route added later (webhooks included) is covered without editing this file.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Job } from "../../shared/jobs/schema";
import { app } from "../../workers/status/app";
import { CreatedApiKey } from "../../workers/status/auth/api-keys";
import { Stats } from "../../workers/status/jobs/stats";
import { unsentBatch } from "../batches/support";
import { fixture, uniqueKey } from "../support/fixtures";
import { jobsForKey } from "../support/queue";
import { ADMIN, call, createKey, errorOf, pageOf, parsed, revokeKey, uploadViaApi } from "./support";

let scopePrefix: string;
let scoped: CreatedApiKey;
let revoked: CreatedApiKey;
let insideKey: string;
let outsideKey: string;
let insideJob: Job;
let outsideJob: Job;
let png: Uint8Array;

beforeAll(async () => {
	png = await fixture("small.png");
	scopePrefix = uniqueKey("scope/");
	insideKey = `${scopePrefix}inside.png`;
	outsideKey = uniqueKey("outside.png");
	scoped = await createKey(scopePrefix);
	revoked = await createKey();
	await revokeKey(revoked.id);
	insideJob = await uploadViaApi(insideKey, png);
	outsideJob = await uploadViaApi(outsideKey, png);
});

/** A concrete path for a route pattern such as /v1/jobs/:id or /v1/images/:key{.+}. */
const concrete = (pattern: string) => pattern.replace(/:\w+\{[^}]*\}/g, "some/object.png").replace(/:\w+/g, "x");

describe("without a valid token every /v1 route answers 401", () => {
	const v1Routes = app.routes.filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/"));

	it("the router serves the routes this matrix expects", () => {
		const served = v1Routes.map((r) => `${r.method} ${r.path}`);
		expect(served).toEqual(
			expect.arrayContaining([
				"PUT /v1/images/:key{[\\s\\S]+}",
				"GET /v1/jobs/:id",
				"GET /v1/jobs",
				"POST /v1/jobs",
				"GET /v1/stats",
				"POST /v1/keys",
				"GET /v1/keys",
				"DELETE /v1/keys/:id",
				"POST /v1/keys/:id/rotate-secret",
				"POST /v1/webhooks",
				"GET /v1/webhooks",
				"GET /v1/webhooks/:id",
				"GET /v1/webhooks/:id/deliveries",
				"DELETE /v1/webhooks/:id",
				"POST /v1/webhooks/:id/rotate-secret",
				"POST /v1/webhooks/:id/deliveries/:delivery_id/redeliver",
				"GET /v1/jobs/:id/deliveries",
				"POST /v1/batches/:id/cancel",
				"POST /v1/admin/sweep",
			]),
		);
	});

	for (const [label, token] of [
		["no token", () => null],
		["a wrong token", () => `${ADMIN}x`],
		["a malformed header", () => ""],
		["a revoked key", () => revoked.token],
	] as const) {
		it(`with ${label}`, async () => {
			for (const route of v1Routes) {
				const res = await call(route.method, concrete(route.path), { token: token() });
				expect(res.status, `${route.method} ${route.path}`).toBe(401);
				expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
				expect((await errorOf(res)).code).toBe("unauthorized");
			}
		});
	}

	it("the public routes need no token, even with a wrong one", async () => {
		for (const path of ["/healthz", "/openapi.json"]) {
			expect((await call("GET", path, { token: null })).status).toBe(200);
			expect((await call("GET", path, { token: "wrong" })).status).toBe(200);
		}
	});

	it("a key works until it is revoked", async () => {
		const key = await createKey();
		expect((await call("GET", "/v1/stats", { token: key.token })).status).toBe(200);
		await revokeKey(key.id);
		expect((await call("GET", "/v1/stats", { token: key.token })).status).toBe(401);
	});
});

describe("a key scoped to a prefix", () => {
	it("PUT /v1/images: uploads inside its prefix, 404 outside (and nothing is written)", async () => {
		const inside = await call("PUT", `/v1/images/${scopePrefix}mine.png`, { token: scoped.token, body: png });
		expect(inside.status).toBe(202);
		const forbiddenKey = uniqueKey("not-mine.png");
		const outside = await call("PUT", `/v1/images/${forbiddenKey}`, { token: scoped.token, body: png });
		expect(outside.status).toBe(404);
		expect(await env.BUCKET.head(forbiddenKey)).toBeNull();
	});

	it("GET /v1/jobs/{id}: its jobs, 404 for others", async () => {
		const inside = await call("GET", `/v1/jobs/${insideJob.id}`, { token: scoped.token });
		expect(inside.status).toBe(200);
		expect((await parsed(inside, Job)).key).toBe(insideKey);
		const outside = await call("GET", `/v1/jobs/${outsideJob.id}`, { token: scoped.token });
		expect(outside.status).toBe(404);
		expect((await errorOf(outside)).code).toBe("not_found");
	});

	it("GET /v1/jobs: only jobs under its prefix are listed", async () => {
		const res = await call("GET", "/v1/jobs?limit=100", { token: scoped.token });
		expect(res.status).toBe(200);
		const { data } = await parsed(res, pageOf(Job));
		expect(data.length).toBeGreaterThan(0);
		expect(data.every((j) => j.key.startsWith(scopePrefix))).toBe(true);
		const other = await call("GET", `/v1/jobs?key=${encodeURIComponent(outsideKey)}`, { token: scoped.token });
		expect((await parsed(other, pageOf(Job))).data).toEqual([]);
		// A prefix wider than the key's scope (every test key starts with `t`) still lists only its jobs.
		const widened = await call("GET", "/v1/jobs?prefix=t&limit=100", { token: scoped.token });
		const widenedJobs = (await parsed(widened, pageOf(Job))).data;
		expect(widenedJobs.length).toBeGreaterThan(0);
		expect(widenedJobs.every((j) => j.key.startsWith(scopePrefix))).toBe(true);
	});

	it("POST /v1/jobs: captions objects inside its prefix, 404 outside", async () => {
		expect((await call("POST", "/v1/jobs", { token: scoped.token, json: { key: insideKey } })).status).toBe(202);
		const outside = await call("POST", "/v1/jobs", { token: scoped.token, json: { key: outsideKey } });
		expect(outside.status).toBe(404);
		const apiJobs = (await jobsForKey(outsideKey)).filter((j) => j.source === "api");
		expect(apiJobs).toEqual([]);
	});

	it("GET /v1/stats: figures limited to its prefix", async () => {
		const res = await call("GET", "/v1/stats", { token: scoped.token });
		expect(res.status).toBe(200);
		const stats = await parsed(res, Stats);
		expect(stats.prefix).toBe(scopePrefix);
		// The inside upload, the scoped upload and the API job: nothing from outside the prefix.
		expect(stats.counts.total).toBe(3);
		expect(stats.counters).toEqual({});
	});

	it("cannot manage keys or run the recovery sweep (403)", async () => {
		for (const [method, path, json] of [
			["POST", "/v1/keys", {}],
			["GET", "/v1/keys", undefined],
			["DELETE", `/v1/keys/${scoped.id}`, undefined],
			["POST", `/v1/keys/${scoped.id}/rotate-secret`, undefined],
			["POST", "/v1/admin/sweep", {}],
		] as const) {
			const res = await call(method, path, { token: scoped.token, json });
			expect(res.status, `${method} ${path}`).toBe(403);
			expect((await errorOf(res)).code).toBe("forbidden");
		}
		// The key it tried to revoke (itself) still works.
		expect((await call("GET", "/v1/stats", { token: scoped.token })).status).toBe(200);
	});
});

describe("webhook subscriptions: the creating key, another key, a key outside the prefix, the admin", () => {
	/** Status of each route of a fresh subscription made by `scoped`, for `token` (and whether it lists it). */
	async function changes(token: string) {
		const res = await call("POST", "/v1/webhooks", {
			token: scoped.token,
			json: { url: "http://127.0.0.1:9/auth", events: ["job.succeeded"] },
		});
		expect(res.status).toBe(201);
		const { id } = z.object({ id: z.string() }).parse(await res.json());
		return {
			listed: await call("GET", "/v1/webhooks", { token }).then(async (r) =>
				z
					.object({ data: z.array(z.object({ id: z.string() })) })
					.parse(await r.json())
					.data.some((s) => s.id === id),
			),
			get: (await call("GET", `/v1/webhooks/${id}`, { token })).status,
			deliveries: (await call("GET", `/v1/webhooks/${id}/deliveries`, { token })).status,
			rotate: (await call("POST", `/v1/webhooks/${id}/rotate-secret`, { token })).status,
			// No delivery msg_x exists: the owner and the admin get past the subscription to a 404 on it.
			redeliver: await call("POST", `/v1/webhooks/${id}/deliveries/msg_x/redeliver`, { token }).then(
				async (r) => `${r.status} ${(await errorOf(r)).message.split(" ")[0]}`,
			),
			delete: (await call("DELETE", `/v1/webhooks/${id}`, { token })).status,
		};
	}

	it("the creating key and the admin may rotate, redeliver and delete", async () => {
		const owner = { listed: true, get: 200, deliveries: 200, rotate: 200, redeliver: "404 Delivery", delete: 200 };
		expect(await changes(scoped.token)).toEqual(owner);
		expect(await changes(ADMIN)).toEqual(owner);
	});

	const nothing = {
		listed: false,
		get: 404,
		deliveries: 404,
		rotate: 404,
		redeliver: "404 Webhook",
		delete: 404,
	};

	it("another key with the same prefix, or an unscoped key, neither sees nor changes it (404, as if it did not exist)", async () => {
		expect(await changes((await createKey(scopePrefix)).token)).toEqual(nothing);
		expect(await changes((await createKey()).token)).toEqual(nothing);
	});

	it("a key outside the prefix does not see it", async () => {
		const outsider = await createKey(uniqueKey("elsewhere/"));
		expect(await changes(outsider.token)).toEqual(nothing);
	});
});

describe("POST /v1/batches/{id}/cancel: the creating key and the admin; any other key gets 404", () => {
	/** The answer to cancelling a fresh batch of `scoped`'s prefix, made by `creator` (null: the admin), for `token`. */
	async function cancel(creator: string | null, token: string): Promise<number> {
		// Left listing (its first page is not sent), so that only the caller decides its fate.
		const batch = await unsentBatch(scopePrefix, { keyId: creator });
		return (await call("POST", `/v1/batches/${batch.id}/cancel`, { token })).status;
	}

	it("answers each caller", async () => {
		const neighbour = await createKey(scopePrefix);
		const unscoped = await createKey();
		const outsider = await createKey(uniqueKey("elsewhere/"));
		expect({
			creator: await cancel(scoped.id, scoped.token),
			admin: await cancel(scoped.id, ADMIN),
			neighbour: await cancel(scoped.id, neighbour.token),
			unscoped: await cancel(scoped.id, unscoped.token),
			outsider: await cancel(scoped.id, outsider.token),
			keyOnAdminsBatch: await cancel(null, scoped.token),
		}).toEqual({ creator: 200, admin: 200, neighbour: 404, unscoped: 404, outsider: 404, keyOnAdminsBatch: 404 });
	});
});

describe("an unscoped key and the admin token", () => {
	it("an unscoped key reaches every job and upload, but not key management", async () => {
		const key = await createKey();
		expect((await call("GET", `/v1/jobs/${outsideJob.id}`, { token: key.token })).status).toBe(200);
		expect((await call("GET", `/v1/jobs/${insideJob.id}`, { token: key.token })).status).toBe(200);
		expect((await call("GET", "/v1/keys", { token: key.token })).status).toBe(403);
		expect((await call("POST", "/v1/admin/sweep", { token: key.token, json: {} })).status).toBe(403);
	});

	it("the admin token reaches every route", async () => {
		expect((await call("PUT", `/v1/images/${uniqueKey("admin.png")}`, { body: png })).status).toBe(202);
		expect((await call("GET", `/v1/jobs/${insideJob.id}`)).status).toBe(200);
		expect((await call("GET", `/v1/jobs/${outsideJob.id}`)).status).toBe(200);
		expect((await call("GET", "/v1/jobs")).status).toBe(200);
		expect((await call("POST", "/v1/jobs", { json: { key: outsideKey } })).status).toBe(202);
		const stats = await call("GET", "/v1/stats");
		expect(stats.status).toBe(200);
		expect((await parsed(stats, Stats)).prefix).toBeNull();
		const created = await call("POST", "/v1/keys", { json: { name: "ci" } });
		expect(created.status).toBe(201);
		const { id } = await parsed(created, CreatedApiKey);
		expect((await call("GET", "/v1/keys")).status).toBe(200);
		expect((await call("DELETE", `/v1/keys/${id}`)).status).toBe(200);
	});
});
