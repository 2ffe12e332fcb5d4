/**
 * Deliveries in D1: the fan-out of a job's or batch's event into one delivery per target (unique per event and
 * target, so an event is delivered once per target however often it is dispatched), the lease a
 * sender takes before an attempt, and the record of each attempt's outcome.
 */
import { z } from "zod";
import type { EstimateModel } from "../../shared/batches/estimate";
import { BatchRow, toBatch } from "../../shared/batches/schema";
import { batchRows, parseRow, parseRows } from "../../shared/d1-rows";
import { ulid } from "../../shared/ids";
import { JobRow, toJob } from "../../shared/jobs/schema";
import { jobColumns } from "../../shared/jobs/texts";
import { deliveryOf } from "../../shared/webhooks/delivery-once";
import { eventJobId } from "../../shared/webhooks/job-event";
import {
	CaptionWebhookPayload,
	DeliveryRow,
	type DeliveryStatus,
	EventRow,
	SubscriptionRow,
	type WebhookPayload,
} from "../../shared/webhooks/schema";

export const newDeliveryId = (now?: number) => `msg_${ulid(now)}`;

/** The columns of an event that travel with the row of its job or batch. */
const eventColumns = {
	event_id: EventRow.shape.id,
	event_type: EventRow.shape.type,
	event_at: EventRow.shape.created_at,
	dispatched_at: EventRow.shape.dispatched_at,
	owner_key_id: z.string().nullable(),
	owner_revoked_at: z.number().nullable(),
};
const EVENT_COLUMNS = "e.id AS event_id, e.type AS event_type, e.created_at AS event_at, e.dispatched_at";
/** When the key that owns a job (`j`) or batch (`b`) was revoked (NULL: live, or no key). */
const ownerRevokedAt = (alias: string) =>
	`(SELECT k.revoked_at FROM api_keys k WHERE k.id = ${alias}.key_id) AS owner_revoked_at`;
const EventWithJob = JobRow.extend(eventColumns);
const EventWithBatch = BatchRow.extend(eventColumns);

const Target = SubscriptionRow.pick({ id: true });
const DeliveryId = DeliveryRow.pick({ id: true });

export type DispatchResult =
	| { kind: "missing" }
	| { kind: "already-dispatched" }
	/** The deliveries this dispatch created. */
	| { kind: "dispatched"; deliveryIds: string[] };

/** What an event is about, as its deliveries need it. */
interface EventSubject {
	dispatchedAt: number | null;
	payload: WebhookPayload;
	/** Subscriptions match when this starts with their prefix: the job's key, or the batch's key prefix. */
	matchKey: string;
	callbackUrl: string | null;
	/** The key whose secret signs the callback (JOB_SIGNING_KEY; a batch's: its maker); null: WEBHOOK_SECRET. */
	keyId: string | null;
	/** That key was revoked: its callback is not sent. */
	keyRevoked: boolean;
}

/**
 * The key whose secret signs a job's callback: the key that made the job (an upload, `POST /v1/jobs`
 * or a batch of that key); for the admin's job (or a bucket upload's) with a callback URL, the
 * key whose scope holds the object (the most specific one not revoked, the oldest of equals), so
 * that a tenant's endpoint can verify callbacks of objects in its folder with its own secret and
 * never needs WEBHOOK_SECRET. NULL (WEBHOOK_SECRET signs) for objects outside every scoped key.
 */
const JOB_SIGNING_KEY = `CASE WHEN j.key_id IS NULL AND j.callback_url IS NOT NULL THEN (
		SELECT k.id FROM api_keys k
		WHERE k.prefix IS NOT NULL AND k.revoked_at IS NULL AND k.webhook_secret IS NOT NULL
			AND substr(j.key, 1, length(k.prefix)) = k.prefix
		ORDER BY length(k.prefix) DESC, k.created_at, k.id LIMIT 1)
	ELSE j.key_id END`;

/**
 * The job, caption or batch an event is about, with the body its deliveries carry. A batch's body
 * is its Batch JSON with the estimate priced on `chain` (MODEL_CHAIN); without it the estimate is null,
 * for a caller that reads only the event's type and targets.
 */
async function loadSubject(
	db: D1Database,
	eventId: string,
	chain: readonly EstimateModel[] | undefined,
): Promise<EventSubject | null> {
	const job = await db
		.prepare(
			`SELECT ${jobColumns("j.")}, ${JOB_SIGNING_KEY} AS owner_key_id, ${ownerRevokedAt("j")}, ${EVENT_COLUMNS}
			FROM webhook_events e JOIN jobs j ON j.id = ${eventJobId("e.")} WHERE e.id = ?`,
		)
		.bind(eventId)
		.first()
		.then(parseRow(EventWithJob));
	if (job) {
		if (job.event_type !== "job.succeeded" && job.event_type !== "job.failed") return null;
		return {
			dispatchedAt: job.dispatched_at,
			payload: { type: job.event_type, timestamp: new Date(job.event_at).toISOString(), data: toJob(job) },
			matchKey: job.key,
			callbackUrl: job.callback_url,
			keyId: job.owner_key_id,
			keyRevoked: job.owner_revoked_at !== null,
		};
	}
	const caption = await db
		.prepare("SELECT * FROM webhook_events WHERE id = ? AND type = 'caption.updated'")
		.bind(eventId)
		.first()
		.then(parseRow(EventRow));
	if (caption) return captionSubject(caption);
	const batch = await db
		.prepare(
			`SELECT b.*, b.key_id AS owner_key_id, ${ownerRevokedAt("b")}, ${EVENT_COLUMNS}
			FROM webhook_events e JOIN batches b ON b.id = e.batch_id WHERE e.id = ?`,
		)
		.bind(eventId)
		.first()
		.then(parseRow(EventWithBatch));
	if (!batch || (batch.event_type !== "batch.completed" && batch.event_type !== "batch.cancelled")) return null;
	return {
		dispatchedAt: batch.dispatched_at,
		payload: {
			type: batch.event_type,
			timestamp: new Date(batch.event_at).toISOString(),
			data: toBatch(batch, undefined, chain),
		},
		matchKey: batch.key_prefix,
		callbackUrl: batch.callback_url,
		keyId: batch.owner_key_id,
		keyRevoked: batch.owner_revoked_at !== null,
	};
}

/**
 * A `caption.updated` event carries its payload (the caption when it was written: later versions
 * must not change what it says). It goes to subscriptions only: there is no callback URL.
 */
function captionSubject(event: EventRow): EventSubject | null {
	const payload = CaptionWebhookPayload.safeParse(JSON.parse(event.payload ?? "null"));
	if (!payload.success) return null;
	return {
		dispatchedAt: event.dispatched_at,
		payload: payload.data,
		matchKey: payload.data.data.key,
		callbackUrl: null,
		keyId: null,
		keyRevoked: false,
	};
}

/**
 * The active subscriptions that want events of `type` about `matchKey` (a job's key, a batch's key
 * prefix), leaving out those of a revoked key.
 */
export function subscriptionsFor(db: D1Database, type: string, matchKey: string): Promise<{ id: string }[]> {
	return db
		.prepare(
			`SELECT id FROM webhook_subscriptions s
			WHERE status = 'active' AND EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?1)
			AND (prefix IS NULL OR substr(?2, 1, length(prefix)) = prefix)
			AND NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = s.key_id AND k.revoked_at IS NOT NULL)`,
		)
		.bind(type, matchKey)
		.all()
		.then(parseRows(Target));
}

/**
 * Creates the deliveries of an event: every active subscription whose events and prefix match the
 * job (or batch), plus its callback URL. Nothing for a revoked key: neither its subscriptions
 * (even one still active) nor the callback of its job or batch, which its secret would sign.
 * Returns the ids of the deliveries this call created.
 */
export async function dispatchEvent(db: D1Database, eventId: string, now = Date.now()): Promise<DispatchResult> {
	// The fan-out reads the event's type and targets only: each attempt builds the body (claimDelivery).
	const subject = await loadSubject(db, eventId, undefined);
	if (!subject) return { kind: "missing" };
	if (subject.dispatchedAt !== null) return { kind: "already-dispatched" };

	const subscriptions = await subscriptionsFor(db, subject.payload.type, subject.matchKey);
	// A subscription's delivery keeps only the subscription's id (its URL is read from it at each
	// attempt); the callback, which has none, keeps its URL.
	const targets: { subscriptionId: string | null; url: string | null; keyId: string | null }[] = subscriptions.map(
		(s) => ({ subscriptionId: s.id, url: null, keyId: null }),
	);
	if (subject.callbackUrl && !subject.keyRevoked) {
		targets.push({ subscriptionId: null, url: subject.callbackUrl, keyId: subject.keyId });
	}

	const insert = db.prepare(
		`INSERT INTO webhook_deliveries (id, event_id, subscription_id, url, key_id, status, next_attempt_at,
			created_at, updated_at)
		SELECT ?1, ?2, ?3, ?4, ?6, 'pending', ?5, ?5, ?5 WHERE NOT EXISTS (${deliveryOf("?2", "?3")})
		RETURNING id`,
	);
	const results = await db.batch([
		...targets.map((t) => insert.bind(newDeliveryId(now), eventId, t.subscriptionId, t.url, now, t.keyId)),
		// The payload is not stored: every attempt rebuilds it, the same bytes, from the job or batch
		// row (terminal: it no longer changes) and the event's time. A second copy of the job per
		// event was the largest part of an image's D1 bytes (docs/data.md#retention).
		db
			.prepare("UPDATE webhook_events SET dispatched_at = ?2 WHERE id = ?1 AND dispatched_at IS NULL")
			.bind(eventId, now),
	]);
	const created = results.slice(0, targets.length).flatMap((result) => batchRows(result, DeliveryId));
	return { kind: "dispatched", deliveryIds: created.map((row) => row.id) };
}

/** A subscription's stored (sealed) secrets and status, as a sender needs them. */
export interface SubscriptionSecrets {
	id: string;
	secret: string;
	previousSecret: string | null;
	previousSecretExpiresAt: number | null;
	status: "active" | "disabled";
}

/** What a sender needs for one attempt of a claimed delivery. */
export interface ClaimedDelivery {
	delivery: DeliveryRow;
	/** Where to send it: the callback URL, or the subscription's URL. */
	url: string;
	payload: string;
	/** The subscription's stored secrets and status; null for the callback-url target. */
	subscription: SubscriptionSecrets | null;
	/** For a callback of a scoped key's job: the key and its stored secret (null: sign with WEBHOOK_SECRET). */
	keySecret: { keyId: string; secret: string } | null;
}

export type ClaimResult =
	| { kind: "claimed"; claimed: ClaimedDelivery }
	| { kind: "missing" }
	/** Delivered or failed already. */
	| { kind: "finished"; delivery: DeliveryRow }
	/** Another sender holds it until then. */
	| { kind: "leased"; until: number }
	/** Its subscription was deleted since the fan-out (the delivery is leased, to be recorded failed). */
	| { kind: "subscription-gone"; delivery: DeliveryRow }
	/** The key that owns it (the subscription's, or the callback's) was revoked: leased, to be recorded failed. */
	| { kind: "key-revoked"; delivery: DeliveryRow };

/** The event's payload and, for a subscription's delivery, the subscription (null once deleted). */
const AttemptContext = z.object({
	payload: EventRow.shape.payload,
	url: SubscriptionRow.shape.url.nullable(),
	secret: SubscriptionRow.shape.secret.nullable(),
	previous_secret: SubscriptionRow.shape.previous_secret,
	previous_secret_expires_at: SubscriptionRow.shape.previous_secret_expires_at,
	status: SubscriptionRow.shape.status.nullable(),
	key_secret: z.string().nullable(),
	key_revoked: z.union([z.literal(0), z.literal(1)]),
});

/**
 * Takes the lease of a pending delivery (counting the attempt), unless another sender holds it.
 * `chain` (the webhooks Worker's MODEL_CHAIN) prices the estimate of a batch event's body.
 */
export async function claimDelivery(
	db: D1Database,
	id: string,
	leaseMs: number,
	chain: readonly EstimateModel[] | undefined,
	now = Date.now(),
): Promise<ClaimResult> {
	const token = crypto.randomUUID();
	const delivery = await db
		.prepare(
			`UPDATE webhook_deliveries SET attempts = attempts + 1, lease_token = ?2, lease_expires_at = ?3, updated_at = ?4
			WHERE id = ?1 AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at < ?4)
			RETURNING *`,
		)
		.bind(id, token, now + leaseMs, now)
		.first()
		.then(parseRow(DeliveryRow));
	if (!delivery) {
		const current = await db
			.prepare("SELECT * FROM webhook_deliveries WHERE id = ?")
			.bind(id)
			.first()
			.then(parseRow(DeliveryRow));
		if (!current) return { kind: "missing" };
		if (current.status !== "pending") return { kind: "finished", delivery: current };
		return { kind: "leased", until: current.lease_expires_at ?? now };
	}
	const context = await db
		.prepare(
			`SELECT e.payload, s.url, s.secret, s.previous_secret, s.previous_secret_expires_at, s.status,
				k.webhook_secret AS key_secret,
				(sk.revoked_at IS NOT NULL OR k.revoked_at IS NOT NULL) AS key_revoked
			FROM webhook_events e
			LEFT JOIN webhook_subscriptions s ON s.id = ?2
			LEFT JOIN api_keys sk ON sk.id = s.key_id
			LEFT JOIN api_keys k ON k.id = ?3
			WHERE e.id = ?1`,
		)
		.bind(delivery.event_id, delivery.subscription_id, delivery.key_id)
		.first()
		.then(parseRow(AttemptContext));
	if (!context) throw new Error(`The event ${delivery.event_id} of delivery ${id} does not exist`);
	// Events dispatched before payloads were rebuilt carry theirs.
	const payload = context.payload ?? (await loadSubject(db, delivery.event_id, chain))?.payload;
	if (!payload) throw new Error(`The job or batch of event ${delivery.event_id} (delivery ${id}) is gone`);
	if (delivery.subscription_id !== null && (context.secret === null || context.status === null)) {
		return { kind: "subscription-gone", delivery };
	}
	// Read after the lease was taken: a revoke committed before this point stops the attempt.
	if (context.key_revoked === 1) return { kind: "key-revoked", delivery };
	const subscription =
		delivery.subscription_id !== null && context.secret !== null && context.status !== null
			? {
					id: delivery.subscription_id,
					secret: context.secret,
					previousSecret: context.previous_secret,
					previousSecretExpiresAt: context.previous_secret_expires_at,
					status: context.status,
				}
			: null;
	const keySecret =
		delivery.key_id !== null && context.key_secret !== null
			? { keyId: delivery.key_id, secret: context.key_secret }
			: null;
	const url = delivery.url ?? context.url;
	if (url === null) throw new Error(`Delivery ${id} has neither a callback URL nor a subscription`);
	const body = typeof payload === "string" ? payload : JSON.stringify(payload);
	return { kind: "claimed", claimed: { delivery, url, payload: body, subscription, keySecret } };
}

/** The outcome of one attempt, as the attempt log and the delivery record it. */
export interface AttemptRecord {
	startedAt: number;
	statusCode: number | null;
	durationMs: number;
	error: string | null;
	/** The delivery's state after this attempt. */
	status: DeliveryStatus;
	nextAttemptAt: number | null;
	/** Disable the subscription, with this reason (410 Gone); null to leave it alone. */
	disableReason: string | null;
	/**
	 * What the endpoint did, for the subscription's failing clock: "failed" starts it (or keeps it
	 * running), "succeeded" stops it; null when no request was made (a refusal).
	 */
	endpoint: "succeeded" | "failed" | null;
}

/** How long an endpoint may fail every attempt before its subscription is disabled. */
export interface FailingPolicy {
	disableAfterMs: number;
}

/** The `disabled_reason` of a subscription whose endpoint failed every attempt for the policy's period. */
export const ENDPOINT_FAILING = "endpoint_failing";

export async function recordAttempt(
	db: D1Database,
	delivery: DeliveryRow,
	record: AttemptRecord,
	policy: FailingPolicy,
	now = Date.now(),
) {
	const statements = [
		// Attempt 1 goes into the delivery's row (shared/webhooks/attempts.ts), a later one into the
		// attempt log; either is written once (the first record of an attempt number stays).
		delivery.attempts === 1
			? db
					.prepare(
						`UPDATE webhook_deliveries SET attempt1_started_at = ?3, attempt1_status_code = ?4,
							attempt1_duration_ms = ?5, attempt1_error = ?6
						WHERE id = ?1 AND ?2 = 1 AND attempt1_started_at IS NULL
							AND NOT EXISTS (SELECT 1 FROM webhook_attempts WHERE delivery_id = ?1 AND attempt = 1)`,
					)
					.bind(delivery.id, delivery.attempts, record.startedAt, record.statusCode, record.durationMs, record.error)
			: db
					.prepare(
						`INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status_code, duration_ms, error)
						VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING`,
					)
					.bind(delivery.id, delivery.attempts, record.startedAt, record.statusCode, record.durationMs, record.error),
		db
			.prepare(
				`UPDATE webhook_deliveries SET status = ?3, last_status_code = ?4, last_error = ?5, next_attempt_at = ?6,
					completed_at = CASE WHEN ?3 = 'pending' THEN NULL ELSE ?7 END, updated_at = ?7,
					lease_token = NULL, lease_expires_at = NULL
				WHERE id = ?1 AND lease_token = ?2`,
			)
			.bind(
				delivery.id,
				delivery.lease_token,
				record.status,
				record.statusCode,
				record.error,
				record.nextAttemptAt,
				now,
			),
	];
	if (record.disableReason && delivery.subscription_id) {
		statements.push(disableSubscriptionStatement(db, delivery.subscription_id, record.disableReason, now));
	}
	if (delivery.subscription_id && record.endpoint !== null) {
		statements.push(...failingClockStatements(db, delivery.subscription_id, record.endpoint, policy, now));
	}
	await db.batch(statements);
}

/**
 * The failing clock (as Stripe and Svix do): a success stops it; a failure starts it if it is not
 * running, then disables the subscription once it has run for the policy's period. Statements of
 * one batch, so the check sees the start.
 */
function failingClockStatements(
	db: D1Database,
	id: string,
	endpoint: "succeeded" | "failed",
	policy: FailingPolicy,
	now: number,
): D1PreparedStatement[] {
	if (endpoint === "succeeded") {
		return [
			db
				.prepare("UPDATE webhook_subscriptions SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL")
				.bind(id),
		];
	}
	return [
		db
			.prepare("UPDATE webhook_subscriptions SET failing_since = ?2 WHERE id = ?1 AND failing_since IS NULL")
			.bind(id, now),
		db
			.prepare(
				`UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = ?3, updated_at = ?2
				WHERE id = ?1 AND status = 'active' AND failing_since <= ?2 - ?4`,
			)
			.bind(id, now, ENDPOINT_FAILING, policy.disableAfterMs),
	];
}

/** An endpoint answered 410 Gone: it asked not to be called again. */
function disableSubscriptionStatement(db: D1Database, id: string, reason: string, now: number): D1PreparedStatement {
	return db
		.prepare(
			`UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = ?2, updated_at = ?3
			WHERE id = ?1 AND status = 'active'`,
		)
		.bind(id, reason, now);
}

/** Fails a delivery that is still pending (dead letters). Returns whether it was pending. */
export async function failPendingDelivery(db: D1Database, id: string, error: string, now = Date.now()) {
	const row = await db
		.prepare(
			`UPDATE webhook_deliveries SET status = 'failed', last_error = ?2, completed_at = ?3, updated_at = ?3,
				lease_token = NULL, lease_expires_at = NULL
			WHERE id = ?1 AND status = 'pending' RETURNING id`,
		)
		.bind(id, error, now)
		.first()
		.then(parseRow(DeliveryId));
	return row !== null;
}

/**
 * Pending deliveries whose next attempt is overdue (before `overdueBefore`) and that nobody holds
 * (their message was lost, or the fan-out stopped before sending), and, on a restarted local
 * stack, every pending delivery last touched before `touchedBefore` (its retry message or its
 * sender died with the old process): they are marked due now and sent again. No horizon: a
 * pending delivery is never abandoned by the sweeper (its retries and the dead-letter queue end it).
 */
export async function takeStalledDeliveries(
	db: D1Database,
	window: { overdueBefore: number; touchedBefore: number },
	now: number,
	limit = 100,
) {
	const results = await db
		.prepare(
			`UPDATE webhook_deliveries SET next_attempt_at = ?3, updated_at = ?3, lease_token = NULL, lease_expires_at = NULL
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending'
				AND ((next_attempt_at < ?1 AND (lease_expires_at IS NULL OR lease_expires_at < ?3)) OR updated_at < ?2)
				LIMIT ?4)
			RETURNING id`,
		)
		.bind(window.overdueBefore, window.touchedBefore, now, limit)
		.all()
		.then(parseRows(DeliveryId));
	return results.map((r) => r.id);
}
