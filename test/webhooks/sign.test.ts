/** The project's Standard Webhooks signing, checked against the reference `standardwebhooks` package. */
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { isWebhookSecret, newWebhookSecret, signWebhook, webhookHeaders } from "../../shared/webhooks/sign";

describe("webhook signing", () => {
	it("headers made with a new secret verify with the standardwebhooks package", async () => {
		const secret = newWebhookSecret();
		const body = JSON.stringify({ type: "job.succeeded", timestamp: new Date().toISOString(), data: { id: "job_1" } });
		const headers = await webhookHeaders(secret, "msg_1", body);
		expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
		expect(headers["webhook-id"]).toBe("msg_1");
		expect(headers["webhook-timestamp"]).toMatch(/^\d{10}$/);
		expect(headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
	});

	it("matches the library's own signature for the same id, timestamp and body", async () => {
		const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
		const at = new Date("2026-11-24T10:00:00Z");
		const body = '{"type":"job.failed"}';
		const expected = new Webhook(secret).sign("msg_abc", at, body);
		expect(await signWebhook(secret, "msg_abc", at.getTime() / 1000, body)).toBe(expected);
	});

	it("a changed body, id or secret no longer verifies", async () => {
		const secret = newWebhookSecret();
		const headers = await webhookHeaders(secret, "msg_2", '{"a":1}');
		expect(() => new Webhook(secret).verify('{"a":2}', headers)).toThrow("No matching signature found");
		expect(() => new Webhook(secret).verify('{"a":1}', { ...headers, "webhook-id": "msg_3" })).toThrow();
		expect(() => new Webhook(newWebhookSecret()).verify('{"a":1}', headers)).toThrow();
	});

	it("accepts only whsec_ secrets with a base64 key", async () => {
		expect(isWebhookSecret(newWebhookSecret())).toBe(true);
		expect(isWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).toBe(false);
		expect(isWebhookSecret("whsec_")).toBe(false);
		expect(isWebhookSecret("whsec_not base64!")).toBe(false);
		await expect(signWebhook("plain-secret", "msg", 1, "")).rejects.toThrow("not a whsec_ secret");
	});
});
