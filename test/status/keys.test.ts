/** API keys: shown once, stored hashed, listed without secrets, revocable, limited to a prefix. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ApiKey, CreatedApiKey } from "../../workers/status/auth/api-keys";
import { sha256Hex } from "../../workers/status/auth/tokens";
import { fixture, uniqueKey } from "../support/fixtures";
import { call, createKey, errorOf, invalidFields, pageOf, parsed } from "./support";

describe("API keys", () => {
	it("the token is returned at creation only, and D1 holds its SHA-256 digest, not the token", async () => {
		const res = await call("POST", "/v1/keys", { json: { name: "importer", prefix: "imports/" } });
		expect(res.status).toBe(201);
		const key = await parsed(res, CreatedApiKey);
		expect(key).toMatchObject({ name: "importer", prefix: "imports/", revoked_at: null });
		expect(key.token).toMatch(/^rck_[0-9a-f]{64}$/);

		const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(key.id).first();
		expect(row?.token_hash).toBe(await sha256Hex(key.token));
		expect(Object.values(row ?? {})).not.toContain(key.token);

		const list = await call("GET", "/v1/keys");
		// The raw body, since parsing would drop a field the schema does not know.
		expect(await list.clone().text()).not.toContain(key.token);
		const { data, next_cursor } = await parsed(list, pageOf(ApiKey));
		const listed = data.find((k) => k.id === key.id);
		expect(listed).toMatchObject({ name: "importer", prefix: "imports/", token_hint: key.token_hint });
		expect(next_cursor).toBeNull();
	});

	it("revoking stops the key at once; revoking again is a 409; an unknown id a 404", async () => {
		const key = await createKey();
		expect((await call("GET", "/v1/jobs", { token: key.token })).status).toBe(200);
		const revoked = await call("DELETE", `/v1/keys/${key.id}`);
		expect(revoked.status).toBe(200);
		expect((await parsed(revoked, ApiKey)).revoked_at).not.toBeNull();
		expect((await call("GET", "/v1/jobs", { token: key.token })).status).toBe(401);
		const again = await call("DELETE", `/v1/keys/${key.id}`);
		expect(again.status).toBe(409);
		expect((await errorOf(again)).code).toBe("already_revoked");
		expect((await call("DELETE", "/v1/keys/key_missing")).status).toBe(404);
	});

	for (const [body, field] of [
		[{ prefix: "" }, "prefix"],
		[{ name: 5 }, "name"],
		[{ scope: "x/" }, "scope"],
	] as const) {
		it(`400 naming ${field} for ${JSON.stringify(body)}`, async () => {
			const res = await call("POST", "/v1/keys", { json: body });
			expect(res.status).toBe(400);
			expect(await invalidFields(res)).toEqual([field]);
		});
	}
});

describe("a key's scope is a whole folder", () => {
	it("a prefix that does not end with / is refused (400 naming prefix): customers/4 would reach customers/42/", async () => {
		const res = await call("POST", "/v1/keys", { json: { prefix: "customers/4" } });
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(["prefix"]);
	});

	for (const prefix of ["/", "a//", "../", "a/./", "a\\b/", "a\u0000/", "ta\u202e/"]) {
		it(`a folder no object key can be in is refused (400 naming prefix): ${JSON.stringify(prefix)}`, async () => {
			const res = await call("POST", "/v1/keys", { json: { prefix } });
			expect(res.status).toBe(400);
			expect(await invalidFields(res)).toEqual(["prefix"]);
		});
	}

	it("a key for customers/4/ cannot read customers/42/…", async () => {
		const base = uniqueKey("");
		const key = await createKey(`${base}customers/4/`);
		const neighbour = `${base}customers/42/cat.jpg`;
		await env.BUCKET.put(neighbour, await fixture("small.jpg"));
		const res = await call("GET", `/v1/images/${encodeURIComponent(neighbour)}`, { token: key.token });
		expect(res.status).toBe(404);
	});
});
