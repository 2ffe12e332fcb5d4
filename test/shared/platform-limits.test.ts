/**
 * Settings held to the platform's documented limits: queue delays (shared/queue/delays.ts) and the
 * open connections of one invocation (workers/webhooks/config.ts).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_DELAY_SECONDS, retryAfter } from "../../shared/queue/runner";
import { readSettings as consumerSettings } from "../../workers/consumer/config";
import { readSettings as webhookSettings } from "../../workers/webhooks/config";

describe("queue delays stay within the 12 hours both Queues documents allow", () => {
	it("MAX_DELAY_SECONDS is 43,200", () => {
		expect(MAX_DELAY_SECONDS).toBe(43_200);
	});

	it("a retry asked for a longer delay is given the maximum, and a negative or fractional one a whole number", () => {
		expect(retryAfter(7 * 24 * 3600)).toEqual({ kind: "retry", delaySeconds: 43_200 });
		expect(retryAfter(-5)).toEqual({ kind: "retry", delaySeconds: 0 });
		expect(retryAfter(2.2)).toEqual({ kind: "retry", delaySeconds: 3 });
	});

	it("RETRY_MAX_SECONDS and WEBHOOK_RETRY_MAX_SECONDS above it are refused", () => {
		expect(() => consumerSettings({ ...env, RETRY_MAX_SECONDS: "86400" })).toThrow(/RETRY_MAX_SECONDS/);
		expect(() => webhookSettings({ ...env, WEBHOOK_RETRY_MAX_SECONDS: "86400" })).toThrow(/WEBHOOK_RETRY_MAX_SECONDS/);
		expect(consumerSettings({ ...env, RETRY_MAX_SECONDS: "43200" }).RETRY_MAX_SECONDS).toBe(43_200);
	});
});

describe("webhook deliveries stay within six open connections per invocation", () => {
	it("WEBHOOK_CONCURRENCY is 6 when unset, and more than 6 is refused", () => {
		// As a Worker whose config does not set it (the var read as absent).
		const unset = { ...env, WEBHOOK_CONCURRENCY: undefined } as unknown as WebhooksEnv;
		expect(webhookSettings(unset).WEBHOOK_CONCURRENCY).toBe(6);
		expect(() => webhookSettings({ ...env, WEBHOOK_CONCURRENCY: "7" })).toThrow(/WEBHOOK_CONCURRENCY/);
	});
});
