/**
 * Helpers for the webhook tests: the receiver the test runs (test/support/global-setup.ts), checking
 * each received delivery with the `standardwebhooks` package (never with the project's own signing
 * code), subscriptions through the API, and running the webhooks Worker's queue handler directly.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { expect, inject } from "vitest";
import type { JobRow } from "../../shared/jobs/schema";
import { finishStatement } from "../../shared/jobs/store";
import { finishWithEvent } from "../../shared/webhooks/outbox";
import type { WebhookPayload } from "../../shared/webhooks/schema";
import { dispatchEvent } from "../../workers/webhooks/deliveries";
import webhooks from "../../workers/webhooks/index";
import { call } from "../status/support";
import { until } from "../support/poll";
import { type RunOptions, runQueueHandler } from "../support/queue";

export interface Received {
	method: string;
	headers: Record<string, string>;
	body: string;
}

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
			return (await fetch(`${url}/requests`)).json<Received[]>();
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

/** Verifies a received delivery as a receiver would, with `standardwebhooks`; returns its payload. */
export function verified(secret: string, request: Received): WebhookPayload {
	return new Webhook(secret).verify(request.body, request.headers) as WebhookPayload;
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
): Promise<CreatedSubscription> {
	const res = await call("POST", "/v1/webhooks", {
		json: { events: ["job.succeeded", "job.failed"], ...body },
		...(token ? { token } : {}),
	});
	if (res.status !== 201) throw new Error(`subscribe failed: ${res.status} ${await res.text()}`);
	return res.json<CreatedSubscription>();
}

export interface DeliveryJson {
	id: string;
	event_id: string;
	event_type: string;
	job_id: string;
	status: string;
	attempts: number;
	last_status_code: number | null;
	last_error: string | null;
	attempt_log: { attempt: number; status_code: number | null; duration_ms: number; error: string | null }[];
}

export async function deliveriesOf(subscriptionId: string): Promise<DeliveryJson[]> {
	const res = await call("GET", `/v1/webhooks/${subscriptionId}/deliveries`);
	expect(res.status).toBe(200);
	return (await res.json<{ data: DeliveryJson[] }>()).data;
}

/** Polls the delivery log until a delivery is no longer pending. */
export async function waitForSettledDelivery(subscriptionId: string, timeoutMs = 15_000): Promise<DeliveryJson> {
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

let jobs = 0;

/**
 * A job of `key` made terminal by the store's own finish statement, with its outbox event, but not
 * enqueued: tests that drive the webhooks handler themselves start from here.
 */
export async function finishedJob(
	key: string,
	outcome: "succeeded" | "failed",
	options: { callbackUrl?: string; now?: number } = {},
): Promise<{ jobId: string; eventId: string }> {
	const now = options.now ?? Date.now();
	const callbackUrl = options.callbackUrl ?? null;
	const id = `job_WEBHOOKTEST${now}${jobs++}`;
	await env.DB.prepare(
		`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, lease_token, lease_expires_at,
			created_at, updated_at, started_at, callback_url)
		VALUES (?1, 'api', 'images', ?2, 'etag', 10, 'processing', 1, 'lease', ?3, ?4, ?4, ?4, ?5)`,
	)
		.bind(id, key, now + 60_000, now, callbackUrl)
		.run();
	const job = await env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first<JobRow>();
	if (!job) throw new Error("the test job was not inserted");
	const result =
		outcome === "succeeded"
			? { status: "succeeded" as const, caption: "A test caption." }
			: { status: "failed" as const, code: "model_error" as const, message: "The model refused." };
	const finished = await finishWithEvent(env.DB, finishStatement(env.DB, job, now, result, {}), id, now);
	if (!finished) throw new Error("the test job did not finish");
	return { jobId: id, eventId: finished.eventId };
}
