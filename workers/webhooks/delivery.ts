/**
 * One `delivery` message: take the delivery's lease, send one signed attempt, log it, and decide
 * what happens next: done, retry later (exponential backoff with jitter, or the endpoint's
 * `Retry-After`), or failed for good (a refusal, 410, or retries used up).
 */
import { log } from "../../shared/log";
import { backoffSeconds } from "../../shared/queue/backoff";
import { ACK, type Outcome, retryAfter } from "../../shared/queue/runner";
import type { DeliveryMessage } from "../../shared/webhooks/schema";
import { type AttemptOutcome, attemptDelivery } from "./attempt";
import { MAX_DELAY_SECONDS, type WebhookSettings } from "./config";
import { type AttemptRecord, claimDelivery, recordAttempt } from "./deliveries";

/** Beyond the attempt's own timeout, time to record the outcome before another sender may take over. */
const LEASE_SLACK_MS = 30_000;

function retryDelay(outcome: AttemptOutcome, attempts: number, settings: WebhookSettings): number {
	const backoff = backoffSeconds(attempts, {
		baseSeconds: settings.WEBHOOK_RETRY_BASE_SECONDS,
		maxSeconds: settings.WEBHOOK_RETRY_MAX_SECONDS,
	});
	const asked = outcome.kind === "retryable" ? (outcome.retryAfterSeconds ?? 0) : 0;
	return Math.min(MAX_DELAY_SECONDS, Math.max(backoff, asked));
}

export async function handleDelivery(
	message: Message<unknown>,
	body: DeliveryMessage,
	env: WebhooksEnv,
	settings: WebhookSettings,
): Promise<Outcome> {
	const now = Date.now();
	const claim = await claimDelivery(env.DB, body.delivery_id, settings.WEBHOOK_TIMEOUT_MS + LEASE_SLACK_MS, now);
	if ("missing" in claim) {
		log("warn", "webhook_delivery_missing", { delivery_id: body.delivery_id });
		return ACK;
	}
	// A duplicate message for a delivery that is done: it was delivered (or failed) once, that is all.
	if ("finished" in claim) return ACK;
	if ("leasedUntil" in claim) return retryAfter(Math.max(1, Math.ceil((claim.leasedUntil - now) / 1000)));
	if ("subscriptionGone" in claim) {
		await recordAttempt(env.DB, claim.subscriptionGone, failure(now, "The subscription was deleted"));
		return ACK;
	}

	const { delivery, payload, subscription } = claim.claimed;
	const secret = subscription?.secret ?? settings.WEBHOOK_SECRET;
	let record: AttemptRecord;
	let outcome: AttemptOutcome | null = null;
	if (subscription?.status === "disabled") {
		record = failure(now, "The subscription is disabled");
	} else if (!secret) {
		record = failure(now, "WEBHOOK_SECRET is not set, so callback URLs cannot be signed");
	} else {
		const report = await attemptDelivery({
			url: delivery.url,
			secret,
			id: delivery.id,
			body: payload,
			timeoutMs: settings.WEBHOOK_TIMEOUT_MS,
			mode: settings.DEPLOY_MODE,
		});
		outcome = report.outcome;
		const base = {
			startedAt: report.startedAt,
			durationMs: report.durationMs,
			statusCode: outcome.statusCode,
			error: outcome.kind === "delivered" ? null : outcome.error,
		};
		switch (outcome.kind) {
			case "delivered":
				record = { ...base, status: "succeeded", nextAttemptAt: null };
				break;
			case "gone":
				record = { ...base, status: "failed", nextAttemptAt: null, disableReason: outcome.error };
				break;
			case "rejected":
				record = { ...base, status: "failed", nextAttemptAt: null };
				break;
			case "retryable":
				record =
					message.attempts > settings.WEBHOOK_MAX_RETRIES
						? {
								...base,
								status: "failed",
								nextAttemptAt: null,
								error: `${outcome.error}; gave up after ${message.attempts} attempts`,
							}
						: { ...base, status: "pending", nextAttemptAt: null };
				break;
		}
	}
	let result: Outcome = ACK;
	if (record.status === "pending" && outcome) {
		const delay = retryDelay(outcome, message.attempts, settings);
		record.nextAttemptAt = Date.now() + delay * 1000;
		result = retryAfter(delay);
	}
	await recordAttempt(env.DB, delivery, record);
	log(record.status === "failed" ? "warn" : "info", "webhook_attempt", {
		delivery_id: delivery.id,
		attempt: delivery.attempts,
		status: record.status,
		status_code: record.statusCode,
		duration_ms: record.durationMs,
		error: record.error,
		retry_in_seconds: result.kind === "retry" ? result.delaySeconds : null,
	});
	return result;
}

function failure(now: number, error: string): AttemptRecord {
	return { startedAt: now, statusCode: null, durationMs: 0, error, status: "failed", nextAttemptAt: null };
}
