/**
 * Idempotent creates: every create route with an `Idempotency-Key` makes one thing however often it
 * is sent, answers the first answer again, refuses the key for another request and keeps keys of
 * different principals apart. The thing made is counted in D1, not taken from the answer.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createR2cClient, ok } from "../../client/index";
import { CreatedApiKey } from "../../workers/status/auth/api-keys";
import { fixture, uniqueKey } from "../support/fixtures";
import { ADMIN, call, createKey, errorOf, invalidFields, parsed } from "./support";

interface CreateRoute {
	path: string;
	/** A body for the thing named `name`, which the test then counts. */
	body(name: string): Promise<unknown>;
	count(name: string): Promise<number>;
}

const countOf = async (sql: string, value: string) => Number(await env.DB.prepare(sql).bind(value).first("n"));

const ROUTES: Record<string, CreateRoute> = {
	"POST /v1/jobs": {
		path: "/v1/jobs",
		async body(name) {
			await env.BUCKET.put(name, await fixture("small.jpg"));
			return { key: name };
		},
		count: (name) => countOf("SELECT count(*) AS n FROM jobs WHERE key = ?", name),
	},
	"POST /v1/batches": {
		path: "/v1/batches",
		body: async (name) => ({ prefix: name }),
		count: (name) => countOf("SELECT count(*) AS n FROM batches WHERE prefix = ?", name),
	},
	"POST /v1/webhooks": {
		path: "/v1/webhooks",
		body: async (name) => ({ url: `http://127.0.0.1:9/${name}`, events: ["job.succeeded"], prefix: name }),
		count: (name) => countOf("SELECT count(*) AS n FROM webhook_subscriptions WHERE prefix = ?", name),
	},
	"POST /v1/keys": {
		path: "/v1/keys",
		body: async (name) => ({ name, prefix: name }),
		count: (name) => countOf("SELECT count(*) AS n FROM api_keys WHERE name = ?", name),
	},
};

const idempotencyKey = () => crypto.randomUUID();

describe.each(Object.entries(ROUTES))("%s with an Idempotency-Key", (_, route) => {
	const send = (json: unknown, key: string, token?: string) =>
		call("POST", route.path, { json, headers: { "Idempotency-Key": key }, token });

	it("a retry answers the first answer again (Idempotent-Replayed: true) and creates nothing", async () => {
		const name = uniqueKey("idem/");
		const body = await route.body(name);
		const key = idempotencyKey();
		const first = await send(body, key);
		expect(first.status).toBeGreaterThanOrEqual(200);
		expect(first.status).toBeLessThan(300);
		expect(first.headers.get("Idempotent-Replayed")).toBeNull();
		const firstBody = await first.text();

		for (let i = 0; i < 2; i++) {
			const again = await send(body, key);
			expect(again.status).toBe(first.status);
			expect(again.headers.get("Idempotent-Replayed")).toBe("true");
			expect(await again.text()).toBe(firstBody);
		}
		expect(await route.count(name)).toBe(1);
	});

	it("the same key with another body is a 422 idempotency_key_reused, and creates nothing", async () => {
		const name = uniqueKey("idem/");
		const other = uniqueKey("idem/");
		const key = idempotencyKey();
		expect((await send(await route.body(name), key)).status).toBeLessThan(300);
		const reused = await send(await route.body(other), key);
		expect(reused.status).toBe(422);
		expect((await errorOf(reused)).code).toBe("idempotency_key_reused");
		expect(await route.count(other)).toBe(0);
	});

	it("concurrent requests with one key create one thing; each answers it or asks to retry (409)", async () => {
		const name = uniqueKey("idem/");
		const body = await route.body(name);
		const key = idempotencyKey();
		const answers = await Promise.all(Array.from({ length: 8 }, () => send(body, key)));
		const created = answers.filter((r) => r.status < 300);
		expect(created.length).toBeGreaterThanOrEqual(1);
		const bodies = new Set(await Promise.all(created.map((r) => r.text())));
		expect(bodies.size).toBe(1);
		for (const busy of answers.filter((r) => r.status >= 300)) {
			expect(busy.status).toBe(409);
			expect((await errorOf(busy)).code).toBe("idempotency_key_in_use");
			expect(busy.headers.get("Retry-After")).toBe("1");
		}
		expect(await route.count(name)).toBe(1);
	});
});

describe("Idempotency-Key", () => {
	it("is per principal: the admin's key and an API key's same key make two things", async () => {
		const base = uniqueKey("");
		const apiKey = await createKey(base);
		const key = idempotencyKey();
		const first = `${base}a/`;
		const second = `${base}b/`;
		const byAdmin = await call("POST", "/v1/batches", { json: { prefix: first }, headers: { "Idempotency-Key": key } });
		const byKey = await call("POST", "/v1/batches", {
			json: { prefix: second },
			headers: { "Idempotency-Key": key },
			token: apiKey.token,
		});
		expect([byAdmin.status, byKey.status]).toEqual([202, 202]);
		expect(byKey.headers.get("Idempotent-Replayed")).toBeNull();
		expect(await ROUTES["POST /v1/batches"]?.count(first)).toBe(1);
		expect(await ROUTES["POST /v1/batches"]?.count(second)).toBe(1);
	});

	it("an error answer is not kept: after a 404 the same request goes through once the object exists", async () => {
		const name = uniqueKey("idem/later.jpg");
		const key = idempotencyKey();
		const send = () => call("POST", "/v1/jobs", { json: { key: name }, headers: { "Idempotency-Key": key } });
		expect((await send()).status).toBe(404);
		await env.BUCKET.put(name, await fixture("small.jpg"));
		const created = await send();
		expect(created.status).toBe(202);
		expect(created.headers.get("Idempotent-Replayed")).toBeNull();
		expect((await send()).headers.get("Idempotent-Replayed")).toBe("true");
		expect(await ROUTES["POST /v1/jobs"]?.count(name)).toBe(1);
	});

	it("after 24 hours the key makes a new thing", async () => {
		const name = uniqueKey("idem/");
		const key = idempotencyKey();
		const send = () => call("POST", "/v1/batches", { json: { prefix: name }, headers: { "Idempotency-Key": key } });
		expect((await send()).status).toBe(202);
		// Age the kept answer past its 24 hours.
		await env.DB.prepare("UPDATE idempotency_keys SET expires_at = ?2 WHERE id = ?1")
			.bind(`admin:${key}`, Date.now() - 1)
			.run();
		const later = await send();
		expect(later.status).toBe(202);
		expect(later.headers.get("Idempotent-Replayed")).toBeNull();
		expect(await ROUTES["POST /v1/batches"]?.count(name)).toBe(2);
	});

	it("expired answers are deleted by later creates", async () => {
		const stale = `admin:${idempotencyKey()}`;
		await env.DB.prepare(
			"INSERT INTO idempotency_keys (id, fingerprint, status, response, created_at, expires_at) VALUES (?1, 'x', 201, NULL, 0, 1)",
		)
			.bind(stale)
			.run();
		const res = await call("POST", "/v1/batches", {
			json: { prefix: uniqueKey("idem/") },
			headers: { "Idempotency-Key": idempotencyKey() },
		});
		expect(res.status).toBe(202);
		await expect
			.poll(async () =>
				env.DB.prepare("SELECT count(*) AS n FROM idempotency_keys WHERE id = ?").bind(stale).first("n"),
			)
			.toBe(0);
	});

	it("a new key's token is kept sealed, never in clear", async () => {
		const name = uniqueKey("idem/");
		const key = idempotencyKey();
		const res = await call("POST", "/v1/keys", { json: { name }, headers: { "Idempotency-Key": key } });
		expect(res.status).toBe(201);
		const { token } = await parsed(res, CreatedApiKey);
		const row = await env.DB.prepare("SELECT response FROM idempotency_keys WHERE id = ?").bind(`admin:${key}`).first();
		expect(JSON.stringify(row)).toMatch(/"response":"v1\./);
		expect(JSON.stringify(row)).not.toContain(token);
	});

	it.each([
		["empty", ""],
		["256 characters", "k".repeat(256)],
		["a control character", "a\u0007b"],
	])("%s is refused with a 400 naming Idempotency-Key", async (_, value) => {
		const res = await call("POST", "/v1/batches", {
			json: { prefix: uniqueKey("idem/") },
			headers: { "Idempotency-Key": value },
		});
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(["Idempotency-Key"]);
	});

	it("a retry during a rotation of WEBHOOK_SECRETS_KEY answers the kept answer, sealed with the old key", async () => {
		const json = { prefix: `${uniqueKey("rotating")}/` };
		const headers = { "Idempotency-Key": crypto.randomUUID() };
		const first = await call("POST", "/v1/keys", { json, headers });
		expect(first.status).toBe(201);
		const rotating = {
			WEBHOOK_SECRETS_KEY: `new-sealing-key-${Date.now()}`,
			WEBHOOK_SECRETS_KEY_PREVIOUS: env.WEBHOOK_SECRETS_KEY,
		};
		const again = await call("POST", "/v1/keys", { json, headers, env: rotating });
		expect(again.status).toBe(201);
		expect(again.headers.get("Idempotent-Replayed")).toBe("true");
		expect(await again.text()).toBe(await first.text());
		expect(await countOf("SELECT count(*) AS n FROM api_keys WHERE prefix = ?", json.prefix)).toBe(1);
	});

	it("255 characters are accepted", async () => {
		const res = await call("POST", "/v1/batches", {
			json: { prefix: uniqueKey("idem/") },
			headers: { "Idempotency-Key": "k".repeat(255) },
		});
		expect(res.status).toBe(202);
	});
});

describe("the typed client (and so r2c) on a create", () => {
	it("sends an Idempotency-Key of its own and, when the answer is lost, retries with it: one thing is made", async () => {
		const name = uniqueKey("idem/client/");
		const sentKeys: (string | null)[] = [];
		const api = createR2cClient({
			baseUrl: "https://status.test",
			token: ADMIN,
			fetch: async (input, init) => {
				const request = new Request(input, init);
				sentKeys.push(request.headers.get("Idempotency-Key"));
				const response = await exports.default.fetch(request);
				// The first answer never arrives: the batch was made, the client sees a network error.
				if (sentKeys.length === 1) {
					await response.body?.cancel();
					throw new TypeError("Network connection lost.");
				}
				return response;
			},
		});
		const batch = await ok(api.POST("/v1/batches", { body: { prefix: name, skip_captioned: true, dry_run: false } }));
		expect(batch.prefix).toBe(name);
		expect(sentKeys).toHaveLength(2);
		expect(sentKeys[0]).toMatch(/^[0-9a-f-]{36}$/);
		expect(sentKeys[1]).toBe(sentKeys[0]);
		expect(await ROUTES["POST /v1/batches"]?.count(name)).toBe(1);
	});

	it("does not retry a read after a network error (only creates carry a key)", async () => {
		let calls = 0;
		const api = createR2cClient({
			baseUrl: "https://status.test",
			token: ADMIN,
			fetch: async () => {
				calls++;
				throw new TypeError("Network connection lost.");
			},
		});
		await expect(api.GET("/v1/batches", { params: { query: {} } })).rejects.toThrow("Network connection lost.");
		expect(calls).toBe(1);
	});
});
