/**
 * WEBHOOK_SECRETS_KEY as one value (shared/webhooks/secrets-key.ts): a Worker given another key
 * refuses to run (the status API answers 503, the webhooks Worker keeps its batch in the queue),
 * a rotation re-seals every stored secret (and the kept answers of idempotent creates) with the new key, and an API key's callback secret can
 * be rotated.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import {
	idempotencySecretId,
	keySecretId,
	openSecret,
	SecretBoxError,
	subscriptionSecretId,
} from "../../shared/webhooks/secret-box";
import { resealSecrets, verifySecretsKey } from "../../shared/webhooks/secrets-key";
import status from "../../workers/status/index";
import webhooks from "../../workers/webhooks/index";
import { call, createKey, errorOf } from "../status/support";
import { hook, subscribe } from "./support";

const KEY = env.WEBHOOK_SECRETS_KEY;
const OTHER = "another-sealing-key-of-another-deployment";

const request = (path: string) =>
	new Request(`https://status.test${path}`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } });

describe("a Worker given another WEBHOOK_SECRETS_KEY refuses to run", () => {
	it("the status API answers 503 secrets_key_mismatch, saying what to do, and stores nothing", async () => {
		await verifySecretsKey(env.DB, { current: KEY });
		const res = await status.fetch(
			request("/v1/jobs"),
			{ ...env, WEBHOOK_SECRETS_KEY: OTHER },
			createExecutionContext(),
		);
		expect(res.status).toBe(503);
		const error = await errorOf(res);
		expect(error.code).toBe("secrets_key_mismatch");
		expect(error.message).toContain("npm run secrets:rotate");
		// With the right key the same request works.
		expect((await status.fetch(request("/v1/jobs"), env, createExecutionContext())).status).toBe(200);
	});

	it("the webhooks Worker sends nothing and keeps the whole batch in its queue", async () => {
		await verifySecretsKey(env.DB, { current: KEY });
		const batch = createMessageBatch("webhook-deliveries", [
			{ id: "m1", timestamp: new Date(), attempts: 1, body: { kind: "delivery", delivery_id: "whd_none" } },
		]);
		const ctx = createExecutionContext();
		await webhooks.queue(batch, { ...env, WEBHOOK_SECRETS_KEY: OTHER }, ctx);
		const result = await getQueueResult(batch, ctx);
		expect(result.retryBatch).toMatchObject({ retry: true });
		expect(result.explicitAcks).toEqual([]);
	});
});

const Sealed = z.object({ secret: z.string() });
const KeySealed = z.object({ webhook_secret: z.string() });
const KeptSealed = z.object({ response: z.string() });

describe("rotating WEBHOOK_SECRETS_KEY", () => {
	it("with the old key as previous, the sweep re-seals every secret so that the new key alone opens them", async () => {
		const endpoint = hook("rotate-key");
		const subscription = await subscribe({ url: endpoint.url });
		const apiKey = await createKey(`rotate-${Date.now()}/`);
		// A create's kept answer (it holds the new key's token) is sealed too.
		const idempotencyKey = crypto.randomUUID();
		const created = await call("POST", "/v1/keys", {
			json: { prefix: `rotate-kept-${Date.now()}/` },
			headers: { "Idempotency-Key": idempotencyKey },
		});
		const createdBody = await created.text();
		const NEW = `new-sealing-key-${Date.now()}`;
		try {
			// During the rotation both keys are accepted, the new one first.
			await verifySecretsKey(env.DB, { current: NEW, previous: KEY });
			expect(await resealSecrets(env.DB, { current: NEW, previous: KEY })).toBeGreaterThanOrEqual(4);
			const sub = await env.DB.prepare("SELECT secret FROM webhook_subscriptions WHERE id = ?")
				.bind(subscription.id)
				.first()
				.then(parseRow(Sealed));
			expect(await openSecret(NEW, subscriptionSecretId(subscription.id), sub?.secret ?? "")).toBe(subscription.secret);
			await expect(openSecret(KEY, subscriptionSecretId(subscription.id), sub?.secret ?? "")).rejects.toThrow(
				SecretBoxError,
			);
			const key = await env.DB.prepare("SELECT webhook_secret FROM api_keys WHERE id = ?")
				.bind(apiKey.id)
				.first()
				.then(parseRow(KeySealed));
			expect(await openSecret(NEW, keySecretId(apiKey.id), key?.webhook_secret ?? "")).toBe(apiKey.webhook_secret);
			const kept = await env.DB.prepare("SELECT response FROM idempotency_keys WHERE id = ?")
				.bind(`admin:${idempotencyKey}`)
				.first()
				.then(parseRow(KeptSealed));
			expect(await openSecret(NEW, idempotencySecretId(`admin:${idempotencyKey}`), kept?.response ?? "")).toBe(
				createdBody,
			);
			// The rotation is over: the new key alone passes the canary, the old one no longer does.
			await expect(verifySecretsKey(env.DB, { current: NEW })).resolves.toBeUndefined();
			await expect(verifySecretsKey(env.DB, { current: `${KEY}-not-cached` })).rejects.toThrow(
				"WEBHOOK_SECRETS_KEY is not the key",
			);
			// A second sweep has nothing left to move.
			expect(await resealSecrets(env.DB, { current: NEW, previous: KEY })).toBe(0);
		} finally {
			// Back to the suite's key, the same way.
			await resealSecrets(env.DB, { current: KEY, previous: NEW });
		}
	});
});

describe("POST /v1/keys/{id}/rotate-secret", () => {
	it("returns a new callback secret once, stored sealed; other keys may not; a revoked key answers 409", async () => {
		const apiKey = await createKey(`rotate-secret-${Date.now()}/`);
		const res = await call("POST", `/v1/keys/${apiKey.id}/rotate-secret`);
		expect(res.status).toBe(200);
		const body = z.object({ id: z.string(), webhook_secret: z.string() }).parse(await res.json());
		expect(body.id).toBe(apiKey.id);
		expect(body.webhook_secret).toMatch(/^whsec_/);
		expect(body.webhook_secret).not.toBe(apiKey.webhook_secret);
		const row = await env.DB.prepare("SELECT webhook_secret FROM api_keys WHERE id = ?")
			.bind(apiKey.id)
			.first()
			.then(parseRow(KeySealed));
		expect(row?.webhook_secret.startsWith("v1.")).toBe(true);
		expect(await openSecret(KEY, keySecretId(apiKey.id), row?.webhook_secret ?? "")).toBe(body.webhook_secret);

		expect((await call("POST", `/v1/keys/${apiKey.id}/rotate-secret`, { token: apiKey.token })).status).toBe(403);
		expect((await call("POST", "/v1/keys/key_missing/rotate-secret")).status).toBe(404);
		expect((await call("DELETE", `/v1/keys/${apiKey.id}`)).status).toBe(200);
		const revoked = await call("POST", `/v1/keys/${apiKey.id}/rotate-secret`);
		expect(revoked.status).toBe(409);
		expect((await errorOf(revoked)).code).toBe("already_revoked");
	});
});
