/**
 * The auth matrix: every route × (no token, wrong token, revoked key, key scoped inside and outside
 * the resource's prefix, admin). Unauthenticated cases are generated from the router's own route
 * table; the route table at the end has one row per route with each caller's status, and fails
 * for a route served without a row.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { randomToken } from "../../shared/ids";
import { Job } from "../../shared/jobs/schema";
import { app, openApiDocument } from "../../workers/status/app";
import { CreatedApiKey } from "../../workers/status/auth/api-keys";
import { Stats } from "../../workers/status/jobs/stats";
import { toOpenApiPath } from "../../workers/status/method-not-allowed";
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

	it("a key's 403 says what only the admin may do: manage API keys, or run the recovery sweep", async () => {
		const key = await createKey();
		const keys = await call("GET", "/v1/keys", { token: key.token });
		expect(await errorOf(keys)).toEqual({
			code: "forbidden",
			message: "Only the admin token can manage API keys",
			details: null,
		});
		const sweep = await call("POST", "/v1/admin/sweep", { token: key.token, json: {} });
		expect(await errorOf(sweep)).toEqual({
			code: "forbidden",
			message: "Only the admin token can run the recovery sweep",
			details: null,
		});
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

/**
 * Every route the status Worker serves, one row each: the path to call (resources made by the
 * in-scope key, fresh where the call changes them) and the status for each caller. A route served
 * (in the router or in /openapi.json) without a row here fails the first test, so a new route must
 * say who may call it.
 */
describe("the route table: every route × no token, a wrong token, an out-of-scope key, an in-scope key, the admin", () => {
	const CALLERS = ["none", "wrong", "outside", "inside", "admin"] as const;
	type Caller = (typeof CALLERS)[number];
	/** The status each caller gets, in the order of CALLERS. */
	type Expected = readonly [number, number, number, number, number];

	let prefix: string;
	let owner: CreatedApiKey;
	let outsider: CreatedApiKey;
	let objectKey: string;
	let job: Job;
	let batchId: string;
	let subscriptionId: string;
	let presetOfScope: string;

	const Created = z.object({ id: z.string() });
	async function made(res: Response, status: number): Promise<string> {
		if (res.status !== status) throw new Error(`set-up failed: ${res.status} ${await res.text()}`);
		return Created.parse(await res.json()).id;
	}
	const newBatch = async () =>
		made(await call("POST", "/v1/batches", { token: owner.token, json: { keys: [objectKey] } }), 202);
	const newSubscription = async () =>
		made(
			await call("POST", "/v1/webhooks", {
				token: owner.token,
				json: { url: "http://127.0.0.1:9/matrix", events: ["job.failed"], prefix },
			}),
			201,
		);
	/** A finished delivery of a fresh subscription of the in-scope key: `{subscription}/deliveries/{delivery}`. */
	async function newDelivery(): Promise<string> {
		const subscription = await newSubscription();
		const [event, delivery, now] = [`evt_${randomToken(8)}`, `msg_${randomToken(8)}`, Date.now()];
		await env.DB.batch([
			env.DB.prepare(
				"INSERT INTO webhook_events (id, job_id, type, created_at) VALUES (?1, ?1, 'job.succeeded', ?2)",
			).bind(event, now),
			env.DB.prepare(
				`INSERT INTO webhook_deliveries (id, event_id, subscription_id, status, created_at, updated_at)
				VALUES (?1, ?2, ?3, 'failed', ?4, ?4)`,
			).bind(delivery, event, subscription, now),
		]);
		return `${subscription}/deliveries/${delivery}`;
	}
	const newKeyId = async () => (await createKey()).id;
	const presetName = () => `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
	/** A preset inside the in-scope key's prefix, made by the admin. */
	const newPreset = async () => {
		const name = presetName();
		const res = await call("POST", "/v1/presets", { json: { name, prefix: `${prefix}${name}/`, output: "tags" } });
		if (res.status !== 201) throw new Error(`preset: ${res.status} ${await res.text()}`);
		return name;
	};

	interface Row {
		path: () => string | Promise<string>;
		json?: () => unknown;
		body?: () => BodyInit;
		expected: Expected;
	}
	const PUBLIC: Expected = [200, 200, 200, 200, 200];
	const EVERY_KEY: Expected = [401, 401, 200, 200, 200];
	const IN_SCOPE: Expected = [401, 401, 404, 200, 200];
	const ADMIN_ONLY: Expected = [401, 401, 403, 403, 200];

	// One row per route (method and OpenAPI path), in the order of the OpenAPI document.
	const ROUTES: Record<string, Row> = {
		"GET /openapi.json": { path: () => "/openapi.json", expected: PUBLIC },
		"GET /healthz": { path: () => "/healthz", expected: PUBLIC },
		"GET /": { path: () => "/", expected: PUBLIC },
		"PUT /v1/images/{key}": {
			path: () => `/v1/images/${prefix}put-${randomToken(4)}.png`,
			body: () => png,
			expected: [401, 401, 404, 202, 202],
		},
		"GET /v1/images/{key}": { path: () => `/v1/images/${objectKey}`, expected: IN_SCOPE },
		"GET /v1/jobs/{id}": { path: () => `/v1/jobs/${job.id}`, expected: IN_SCOPE },
		"GET /v1/jobs": { path: () => "/v1/jobs", expected: EVERY_KEY },
		"POST /v1/jobs": { path: () => "/v1/jobs", json: () => ({ key: objectKey }), expected: [401, 401, 404, 202, 202] },
		"GET /v1/jobs/{id}/deliveries": { path: () => `/v1/jobs/${job.id}/deliveries`, expected: IN_SCOPE },
		"POST /v1/batches": {
			path: () => "/v1/batches",
			json: () => ({ keys: [objectKey] }),
			expected: [401, 401, 404, 202, 202],
		},
		"GET /v1/batches": { path: () => "/v1/batches", expected: EVERY_KEY },
		"GET /v1/batches/{id}": { path: () => `/v1/batches/${batchId}`, expected: IN_SCOPE },
		// A batch of the in-scope key whose listing is never sent: it stays cancellable.
		"POST /v1/batches/{id}/cancel": {
			path: async () => `/v1/batches/${(await unsentBatch(prefix, { keyId: owner.id })).id}/cancel`,
			expected: IN_SCOPE,
		},
		// A dry run of the in-scope key, left planned by hand (its listing is never sent).
		"POST /v1/batches/{id}/start": {
			path: async () => {
				const batch = await unsentBatch(prefix, { keyId: owner.id, dryRun: true });
				await env.DB.prepare("UPDATE batches SET status = 'planned' WHERE id = ?").bind(batch.id).run();
				return `/v1/batches/${batch.id}/start`;
			},
			expected: [401, 401, 404, 202, 202],
		},
		"GET /v1/batches/{id}/results": { path: () => `/v1/batches/${batchId}/results`, expected: IN_SCOPE },
		"POST /v1/presets": {
			path: () => "/v1/presets",
			json: () => {
				const name = presetName();
				return { name, prefix: `${prefix}${name}/`, output: "alt_text" };
			},
			expected: [401, 401, 404, 201, 201],
		},
		"GET /v1/presets": { path: () => "/v1/presets", expected: EVERY_KEY },
		"GET /v1/presets/{name}": { path: () => `/v1/presets/${presetOfScope}`, expected: IN_SCOPE },
		"DELETE /v1/presets/{name}": { path: async () => `/v1/presets/${await newPreset()}`, expected: IN_SCOPE },
		// A stream: its answer's status is all the row reads (the body is cancelled).
		"GET /v1/events": { path: () => `/v1/events?batch_id=${batchId}`, expected: IN_SCOPE },
		"POST /v1/events/tokens": {
			path: () => "/v1/events/tokens",
			json: () => ({}),
			expected: [401, 401, 201, 201, 201],
		},
		"GET /v1/captions": { path: () => "/v1/captions", expected: EVERY_KEY },
		"GET /v1/captions/{key}": { path: () => `/v1/captions/${encodeURIComponent(objectKey)}`, expected: IN_SCOPE },
		"PUT /v1/captions/{key}": {
			path: () => `/v1/captions/${encodeURIComponent(objectKey)}`,
			json: () => ({ text: "A caption written by hand." }),
			expected: IN_SCOPE,
		},
		// Every key exports its own scope; a prefix outside it is 404 (test/status/captions.test.ts).
		"GET /v1/exports/captions": { path: () => "/v1/exports/captions", expected: EVERY_KEY },
		"GET /v1/stats": { path: () => "/v1/stats", expected: EVERY_KEY },
		"GET /v1/models": { path: () => "/v1/models", expected: EVERY_KEY },
		"GET /v1/stats/series": { path: () => "/v1/stats/series?window=1h", expected: EVERY_KEY },
		"POST /v1/keys": { path: () => "/v1/keys", json: () => ({ name: "matrix" }), expected: [401, 401, 403, 403, 201] },
		"GET /v1/keys": { path: () => "/v1/keys", expected: ADMIN_ONLY },
		"POST /v1/keys/{id}/rotate-secret": {
			path: async () => `/v1/keys/${await newKeyId()}/rotate-secret`,
			expected: ADMIN_ONLY,
		},
		"DELETE /v1/keys/{id}": { path: async () => `/v1/keys/${await newKeyId()}`, expected: ADMIN_ONLY },
		"POST /v1/webhooks": {
			path: () => "/v1/webhooks",
			json: () => ({ url: "http://127.0.0.1:9/matrix", events: ["job.failed"], prefix }),
			expected: [401, 401, 404, 201, 201],
		},
		"GET /v1/webhooks": { path: () => "/v1/webhooks", expected: EVERY_KEY },
		"GET /v1/webhooks/{id}": { path: () => `/v1/webhooks/${subscriptionId}`, expected: IN_SCOPE },
		"DELETE /v1/webhooks/{id}": { path: async () => `/v1/webhooks/${await newSubscription()}`, expected: IN_SCOPE },
		"POST /v1/webhooks/{id}/rotate-secret": {
			path: async () => `/v1/webhooks/${await newSubscription()}/rotate-secret`,
			expected: IN_SCOPE,
		},
		"GET /v1/webhooks/{id}/deliveries": { path: () => `/v1/webhooks/${subscriptionId}/deliveries`, expected: IN_SCOPE },
		"POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver": {
			path: async () => `/v1/webhooks/${await newDelivery()}/redeliver`,
			expected: [401, 401, 404, 202, 202],
		},
		// Nothing in the test pool is older than stale_after_ms = now: the sweep changes nothing of other tests.
		"POST /v1/admin/sweep": {
			path: () => "/v1/admin/sweep",
			json: () => ({ stale_after_ms: Date.now() }),
			expected: ADMIN_ONLY,
		},
	};

	beforeAll(async () => {
		prefix = uniqueKey("matrix/");
		[owner, outsider] = await Promise.all([createKey(prefix), createKey(uniqueKey("matrix-elsewhere/"))]);
		objectKey = `${prefix}photo.png`;
		job = await uploadViaApi(objectKey, png, {}, owner.token);
		[batchId, subscriptionId, presetOfScope] = await Promise.all([newBatch(), newSubscription(), newPreset()]);
		// The object has a caption, so that reading it is a 200 for those who may.
		const captioned = await call("PUT", `/v1/captions/${encodeURIComponent(objectKey)}`, { json: { text: "set-up" } });
		if (captioned.status !== 200) throw new Error(`set-up failed: ${captioned.status} ${await captioned.text()}`);
	});

	it("has a row for every route the router and /openapi.json serve, and no other", () => {
		// `/v1/jobs/:id` and `/v1/images/:key{[\s\S]+}` are `/v1/jobs/{id}` and `/v1/images/{key}` in the document.
		const routed = app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${toOpenApiPath(r.path)}`);
		const documented = Object.entries(openApiDocument().paths ?? {}).flatMap(([path, item]) =>
			Object.keys(item ?? {})
				.filter((m) => ["get", "put", "post", "patch", "delete"].includes(m))
				.map((m) => `${m.toUpperCase()} ${path}`),
		);
		expect([...new Set([...routed, ...documented])].sort()).toEqual(Object.keys(ROUTES).sort());
	});

	const tokenOf = (caller: Caller): string | null => {
		switch (caller) {
			case "none":
				return null;
			case "wrong":
				return `rck_${randomToken(32)}`;
			case "outside":
				return outsider.token;
			case "inside":
				return owner.token;
			case "admin":
				return ADMIN;
		}
	};

	for (const [route, row] of Object.entries(ROUTES)) {
		it(route, async () => {
			const method = route.split(" ")[0] ?? "GET";
			const answers: number[] = [];
			for (const caller of CALLERS) {
				const res = await call(method, await row.path(), {
					token: tokenOf(caller),
					json: row.json?.(),
					body: row.body?.(),
				});
				answers.push(res.status);
				if (res.status === 401) expect((await errorOf(res)).code, `${route} as ${caller}`).toBe("unauthorized");
				else await res.body?.cancel();
			}
			expect(answers).toEqual([...row.expected]);
		});
	}
});
