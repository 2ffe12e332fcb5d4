/**
 * Helpers for the webhook tests: the receiver the test runs (test/support/global-setup.ts), checking
 * each received delivery with the `standardwebhooks` package (never with the project's own signing
 * code), subscriptions through the API, and running the webhooks Worker's queue handler directly.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { expect, inject } from "vitest";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { finishStatement } from "../../shared/jobs/store";
import { finishWithEvent } from "../../shared/webhooks/outbox";
import {
	BatchWebhookPayload,
	CreatedWebhookSubscription,
	JobWebhookPayload,
	SubscriptionRow,
	WebhookDelivery,
} from "../../shared/webhooks/schema";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import webhooks from "../../workers/webhooks/index";
import { call, pageOf, parsed } from "../status/support";
import { insertJob } from "../support/jobs";
import { until } from "../support/poll";
import { type RunOptions, runQueueHandler } from "../support/queue";

/** A request the test's receiver got, as its `GET …/requests` lists it. */
const Received = z.object({ method: z.string(), headers: z.record(z.string(), z.string()), body: z.string() });
export type Received = z.infer<typeof Received>;

export interface ScriptedAnswer {
	status: number;
	headers?: Record<string, string>;
	delayMs?: number;
}

let hooks = 0;

/** A fresh endpoint on the test's receiver. */
export function hook(label: string) {
	const name = `${label}-${Date.now().toString(36)}-${hooks++}`;
	const url = `${inject("hooksUrl")}/${name}`;
	return {
		url,
		async script(answers: ScriptedAnswer[]): Promise<void> {
			const res = await fetch(`${url}/script`, { method: "PUT", body: JSON.stringify(answers) });
			expect(res.status).toBe(204);
		},
		async received(): Promise<Received[]> {
			return z.array(Received).parse(await (await fetch(`${url}/requests`)).json());
		},
		/** Polls until at least `count` requests arrived (deliveries through the real queues). */
		async waitFor(count: number, timeoutMs = 15_000): Promise<Received[]> {
			let got: Received[] = [];
			return until(
				() => `${name} got ${got.length} of ${count} deliveries`,
				async () => {
					got = await this.received();
					return got.length >= count ? got : undefined;
				},
				timeoutMs,
			);
		},
	};
}

/** Verifies a received job event as a receiver would, with `standardwebhooks`; returns its payload. */
export function verified(secret: string, request: Received): z.infer<typeof JobWebhookPayload> {
	return JobWebhookPayload.parse(new Webhook(secret).verify(request.body, request.headers));
}

/** Verifies a received batch event (`batch.completed` / `batch.cancelled`) the same way. */
export function verifiedBatchEvent(secret: string, request: Received): z.infer<typeof BatchWebhookPayload> {
	return BatchWebhookPayload.parse(new Webhook(secret).verify(request.body, request.headers));
}

export interface CreatedSubscription {
	id: string;
	secret: string;
	url: string;
	prefix: string | null;
	events: string[];
	status: string;
}

export async function subscribe(
	body: { url: string; events?: string[]; prefix?: string },
	token?: string,
): Promise<CreatedWebhookSubscription> {
	const res = await call("POST", "/v1/webhooks", {
		json: { events: ["job.succeeded", "job.failed"], ...body },
		...(token ? { token } : {}),
	});
	if (res.status !== 201) throw new Error(`subscribe failed: ${res.status} ${await res.text()}`);
	return parsed(res, CreatedWebhookSubscription);
}

/** A subscription's D1 row, as stored. */
export async function subscriptionRow(id: string): Promise<SubscriptionRow> {
	const row = await env.DB.prepare("SELECT * FROM webhook_subscriptions WHERE id = ?")
		.bind(id)
		.first()
		.then(parseRow(SubscriptionRow));
	if (!row) throw new Error(`no subscription ${id}`);
	return row;
}

export async function deliveriesOf(subscriptionId: string): Promise<WebhookDelivery[]> {
	const res = await call("GET", `/v1/webhooks/${subscriptionId}/deliveries`);
	expect(res.status).toBe(200);
	return (await parsed(res, pageOf(WebhookDelivery))).data;
}

/** Polls the delivery log until a delivery is no longer pending. */
export async function waitForSettledDelivery(subscriptionId: string, timeoutMs = 15_000): Promise<WebhookDelivery> {
	return until(
		`the delivery of ${subscriptionId} did not settle`,
		async () => {
			const [delivery] = await deliveriesOf(subscriptionId);
			return delivery && delivery.status !== "pending" ? delivery : undefined;
		},
		timeoutMs,
	);
}

/** Dispatches an event (the real fan-out, without enqueueing) that must make exactly one delivery; its id. */
export async function dispatchOne(eventId: string): Promise<string> {
	const dispatched = await dispatchEvent(env.DB, eventId);
	if (dispatched.kind !== "dispatched" || dispatched.deliveryIds.length !== 1) {
		throw new Error(`expected one delivery for ${eventId}, got ${JSON.stringify(dispatched)}`);
	}
	return dispatched.deliveryIds[0] ?? "";
}

/** Runs the webhooks Worker's queue handler on one batch, as the Queues runtime would. */
export function runWebhooks(bodies: unknown[], options: RunOptions = {}) {
	return runQueueHandler(webhooks.queue, options.queue ?? "webhook-deliveries", bodies, options);
}

/**
 * A job of `key` made terminal by the store's own finish statement, with its outbox event, but not
 * enqueued: tests that drive the webhooks handler themselves start from here.
 */
export async function finishedJob(
	key: string,
	outcome: "succeeded" | "failed",
	options: { callbackUrl?: string; now?: number; keyId?: string } = {},
): Promise<{ jobId: string; eventId: string }> {
	const now = options.now ?? Date.now();
	const job = await insertJob({
		key,
		size: 10,
		status: "processing",
		attempts: 1,
		lease_token: "lease",
		lease_expires_at: now + 60_000,
		created_at: now,
		started_at: now,
		callback_url: options.callbackUrl ?? null,
		key_id: options.keyId ?? null,
	});
	const result =
		outcome === "succeeded"
			? { status: "succeeded" as const, caption: "A test caption." }
			: { status: "failed" as const, code: "model_error" as const, message: "The model refused." };
	const finished = await finishWithEvent(env.DB, finishStatement(env.DB, job, now, result, {}), job.id, now);
	if (!finished) throw new Error("the test job did not finish");
	return { jobId: job.id, eventId: finished.eventId };
}
