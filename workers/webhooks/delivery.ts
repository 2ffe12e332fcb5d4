/**
 * One `delivery` message as a pipeline: take the delivery's lease, send one signed attempt (or
 * refuse to, for a disabled subscription, a revoked key or a callback URL without a secret), decide what follows
 * (retry-policy.ts), and record the attempt with the delivery's new state.
 */
import { log } from "../../shared/log";
import { ACK, type Outcome, retryAfter } from "../../shared/queue/runner";
import type { DeliveryMessage } from "../../shared/queue/webhook-deliveries";
import type { DeliveryRow } from "../../shared/webhooks/schema";
import { keySecretId, SecretBoxError, subscriptionSecretId } from "../../shared/webhooks/secret-box";
import { openWithKeys } from "../../shared/webhooks/secrets-key";
import { type AttemptReport, attemptDelivery } from "./attempt";
import type { WebhookSettings } from "./config";
import { type AttemptRecord, type ClaimedDelivery, claimDelivery, recordAttempt } from "./deliveries";
import { type NextStep, nextStep } from "./retry-policy";

/** Why a delivery of a revoked key (its subscription's, or its job's or batch's callback) was not sent. */
export const KEY_REVOKED_ERROR = "The API key that owns this delivery was revoked";

/** Beyond the attempt's own timeout, time to record the outcome before another sender may take over. */
const LEASE_SLACK_MS = 30_000;

export async function handleDelivery(
	message: Message<unknown>,
	body: DeliveryMessage,
	env: WebhooksEnv,
	settings: WebhookSettings,
): Promise<Outcome> {
	const now = Date.now();
	const leaseMs = settings.WEBHOOK_TIMEOUT_MS + LEASE_SLACK_MS;
	const claim = await claimDelivery(env.DB, body.delivery_id, leaseMs, settings.MODEL_CHAIN, now);
	switch (claim.kind) {
		case "missing":
			log("warn", "webhook_delivery_missing", { delivery_id: body.delivery_id });
			return ACK;
		case "finished":
			// A duplicate message for a delivery that is done: it was delivered (or failed) once, that is all.
			return ACK;
		case "leased":
			return retryAfter(Math.max(1, Math.ceil((claim.until - now) / 1000)));
		case "subscription-gone":
			return settleAttempt(
				env,
				claim.delivery,
				refusal("The subscription was deleted", now),
				message.attempts,
				settings,
			);
		case "key-revoked":
			return settleAttempt(env, claim.delivery, refusal(KEY_REVOKED_ERROR, now), message.attempts, settings);
		case "claimed": {
			const report = await attempt(claim.claimed, settings, now);
			return settleAttempt(env, claim.claimed.delivery, report, message.attempts, settings);
		}
	}
}

/**
 * The secrets that sign a delivery: a subscription's own (and, during a rotation's overlap, the
 * previous one after it); for a callback URL, the secret of the delivery's key (the API key that
 * made the job or batch, or for the admin's job the key whose scope holds the object:
 * deliveries.ts), else WEBHOOK_SECRET (and for keys made before keys had secrets).
 */
async function signingSecrets(
	{ subscription, keySecret }: ClaimedDelivery,
	settings: WebhookSettings,
	now: number,
): Promise<string[] | null> {
	const keys = { current: settings.WEBHOOK_SECRETS_KEY, previous: settings.WEBHOOK_SECRETS_KEY_PREVIOUS };
	if (subscription) {
		const rowId = subscriptionSecretId(subscription.id);
		const current = await openWithKeys(keys, rowId, subscription.secret);
		const previous = subscription.previousSecret;
		const inOverlap = previous !== null && (subscription.previousSecretExpiresAt ?? 0) > now;
		return inOverlap ? [current, await openWithKeys(keys, rowId, previous)] : [current];
	}
	if (keySecret) return [await openWithKeys(keys, keySecretId(keySecret.keyId), keySecret.secret)];
	return settings.WEBHOOK_SECRET ? [settings.WEBHOOK_SECRET] : null;
}

/** One signed attempt, or a refusal without a request when the delivery cannot be sent. */
async function attempt(claimed: ClaimedDelivery, settings: WebhookSettings, now: number): Promise<AttemptReport> {
	const { delivery, payload, subscription } = claimed;
	if (subscription?.status === "disabled") return refusal("The subscription is disabled", now);
	let secrets: string[] | null;
	try {
		secrets = await signingSecrets(claimed, settings, now);
	} catch (err) {
		if (!(err instanceof SecretBoxError)) throw err;
		// A configuration fault (WEBHOOK_SECRETS_KEY missing or changed): retried, so fixing it recovers.
		return {
			outcome: { kind: "retryable", statusCode: null, error: err.message, retryAfterSeconds: null },
			startedAt: now,
			durationMs: 0,
			sent: false,
		};
	}
	if (!secrets) return refusal("WEBHOOK_SECRET is not set, so callback URLs cannot be signed", now);
	return attemptDelivery({
		url: claimed.url,
		secrets,
		id: delivery.id,
		body: payload,
		timeoutMs: settings.WEBHOOK_TIMEOUT_MS,
		mode: settings.DEPLOY_MODE,
	});
}

const refusal = (error: string, now: number): AttemptReport => ({
	outcome: { kind: "rejected", statusCode: null, error },
	startedAt: now,
	durationMs: 0,
	sent: false,
});

async function settleAttempt(
	env: WebhooksEnv,
	delivery: DeliveryRow,
	report: AttemptReport,
	attempts: number,
	settings: WebhookSettings,
): Promise<Outcome> {
	const next = nextStep(report.outcome, attempts, {
		maxRetries: settings.WEBHOOK_MAX_RETRIES,
		baseSeconds: settings.WEBHOOK_RETRY_BASE_SECONDS,
		maxSeconds: settings.WEBHOOK_RETRY_MAX_SECONDS,
	});
	const record = attemptRecord(report, next, Date.now());
	await recordAttempt(env.DB, delivery, record, {
		disableAfterMs: settings.WEBHOOK_DISABLE_FAILING_HOURS * 3_600_000,
	});
	log(record.status === "failed" ? "warn" : "info", "webhook_attempt", {
		delivery_id: delivery.id,
		// shared/log.ts drops the URL's query string and credentials. A subscription's delivery is
		// named by its subscription (its URL is the subscription's).
		url: delivery.url,
		subscription_id: delivery.subscription_id,
		attempt: delivery.attempts,
		status: record.status,
		status_code: record.statusCode,
		duration_ms: record.durationMs,
		error: record.error,
		retry_in_seconds: next.kind === "retry" ? next.delaySeconds : null,
	});
	return next.kind === "retry" ? retryAfter(next.delaySeconds) : ACK;
}

/** The attempt as the log records it, and the delivery's state after it. */
function attemptRecord(report: AttemptReport, next: NextStep, now: number): AttemptRecord {
	const { outcome } = report;
	const endpoint: AttemptRecord["endpoint"] = !report.sent
		? null
		: outcome.kind === "delivered"
			? "succeeded"
			: "failed";
	const attempt = {
		endpoint,
		startedAt: report.startedAt,
		durationMs: report.durationMs,
		statusCode: outcome.statusCode,
		error: outcome.kind === "delivered" ? null : outcome.error,
	};
	switch (next.kind) {
		case "delivered":
			return { ...attempt, status: "succeeded", nextAttemptAt: null, disableReason: null };
		case "retry":
			return { ...attempt, status: "pending", nextAttemptAt: now + next.delaySeconds * 1000, disableReason: null };
		case "failed":
			return {
				...attempt,
				error: next.error,
				status: "failed",
				nextAttemptAt: null,
				disableReason: next.disableSubscription ? next.error : null,
			};
	}
}
