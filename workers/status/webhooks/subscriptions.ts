/**
 * Webhook subscriptions in D1 (migrations/0003_webhooks.sql, 0006_tenancy.sql): create (the secret
 * is returned this once and stored sealed), list, get, delete (with its delivery log) and rotate the
 * secret. Ownership: a subscription belongs to the key that created it (`key_id`; NULL: the admin
 * token); a key lists, reads and changes only its own (inside its prefix), the admin every one.
 */
import { z } from "zod";
import { batchRows, parseRow, parseRows } from "../../../shared/d1-rows";
import { ulid } from "../../../shared/ids";
import { iso } from "../../../shared/iso";
import {
	type CreatedWebhookSubscription,
	SubscriptionRow,
	WebhookEventType,
	type WebhookSubscription,
} from "../../../shared/webhooks/schema";
import { sealSecret, subscriptionSecretId } from "../../../shared/webhooks/secret-box";
import { newWebhookSecret } from "../../../shared/webhooks/sign";
import { type Principal, principalKeyId, scopePrefix } from "../auth/authorisation";

/** How long a rotated-out secret keeps signing deliveries next to the new one. */
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

export function toSubscription(row: SubscriptionRow, now = Date.now()): WebhookSubscription {
	const overlapUntil = row.previous_secret !== null ? row.previous_secret_expires_at : null;
	return {
		id: row.id,
		url: row.url,
		events: z.array(WebhookEventType).parse(JSON.parse(row.events)),
		prefix: row.prefix,
		status: row.status,
		disabled_reason: row.disabled_reason,
		key_id: row.key_id,
		failing_since: iso(row.failing_since),
		previous_secret_expires_at: overlapUntil !== null && overlapUntil > now ? iso(overlapUntil) : null,
		created_at: new Date(row.created_at).toISOString(),
	};
}

/** SQL condition (on alias `s`) for subscriptions inside the scope bound to `param` (NULL: everything). */
export const inScope = (param: string) =>
	`(${param} IS NULL OR (s.prefix IS NOT NULL AND substr(s.prefix, 1, length(${param})) = ${param}))`;

/** SQL condition (on alias `s`) for subscriptions the caller bound to `param` owns (NULL: the admin, all). */
export const owned = (param: string) => `(${param} IS NULL OR s.key_id = ${param})`;

/** Who asks: their scope (NULL: everything) and their key (NULL: the admin). */
export interface Caller {
	scope: string | null;
	keyId: string | null;
}

/** The caller a request's principal is, as this store checks scope and ownership. */
export const callerOf = (principal: Principal): Caller => ({
	scope: scopePrefix(principal),
	keyId: principalKeyId(principal),
});

export type CreateResult =
	| { kind: "created"; subscription: CreatedWebhookSubscription }
	| { kind: "limit-reached" }
	/** The key was revoked after the request was authenticated. */
	| { kind: "key-revoked" };

/**
 * Creates a subscription, unless the key already has `maxPerKey` (the admin has no limit) or is no
 * longer live. The count, the key's liveness and the insert are one statement: concurrent requests
 * cannot pass the limit together, and a create racing the key's revocation either lands before it
 * (and is disabled by it) or inserts nothing.
 */
export async function createSubscription(
	db: D1Database,
	input: { url: string; events: WebhookEventType[]; prefix: string | null; keyId: string | null },
	secrets: { sealingKey: string; maxPerKey: number },
	now = Date.now(),
): Promise<CreateResult> {
	const id = `wh_${ulid(now)}`;
	const secret = newWebhookSecret();
	const sealed = await sealSecret(secrets.sealingKey, subscriptionSecretId(id), secret);
	const row = await db
		.prepare(
			`INSERT INTO webhook_subscriptions (id, url, events, prefix, secret, key_id, status, created_at, updated_at)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?7
			WHERE ?6 IS NULL OR (
				EXISTS (SELECT 1 FROM api_keys WHERE id = ?6 AND revoked_at IS NULL)
				AND (SELECT count(*) FROM webhook_subscriptions WHERE key_id = ?6) < ?8
			)
			RETURNING *`,
		)
		.bind(id, input.url, JSON.stringify(input.events), input.prefix, sealed, input.keyId, now, secrets.maxPerKey)
		.first()
		.then(parseRow(SubscriptionRow));
	if (row) return { kind: "created", subscription: { ...toSubscription(row, now), secret } };
	if (input.keyId === null || (await isLiveKey(db, input.keyId))) return { kind: "limit-reached" };
	return { kind: "key-revoked" };
}

const LiveKeyId = z.object({ id: z.string() });

async function isLiveKey(db: D1Database, keyId: string): Promise<boolean> {
	const row = await db
		.prepare("SELECT id FROM api_keys WHERE id = ? AND revoked_at IS NULL")
		.bind(keyId)
		.first()
		.then(parseRow(LiveKeyId));
	return row !== null;
}

/** The most subscriptions a list returns, and (through the indexes) the most rows it reads. */
export const MAX_SUBSCRIPTIONS_LISTED = 1000;

/**
 * The subscriptions a caller may see, newest first, reading at most MAX_SUBSCRIPTIONS_LISTED rows
 * whatever the table holds: the admin walks the newest-first index and sees every subscription; a
 * key reads only its own, through the owner index (a key has at most MAX_SUBSCRIPTIONS_PER_KEY),
 * never another tenant's row: their URLs may carry tokens.
 */
export async function listSubscriptions(
	db: D1Database,
	caller: Caller,
): Promise<{ data: WebhookSubscription[]; rowsRead: number }> {
	const statement =
		caller.keyId === null
			? db
					.prepare("SELECT * FROM webhook_subscriptions ORDER BY created_at DESC, id DESC LIMIT ?1")
					.bind(MAX_SUBSCRIPTIONS_LISTED)
			: db
					.prepare(
						`SELECT * FROM webhook_subscriptions AS s INDEXED BY webhook_subscriptions_key
						WHERE s.key_id = ?1 AND ${inScope("?2")} ORDER BY s.created_at DESC, s.id DESC LIMIT ?3`,
					)
					.bind(caller.keyId, caller.scope, MAX_SUBSCRIPTIONS_LISTED);
	const result = await statement.all();
	const rows = parseRows(SubscriptionRow)(result);
	return { data: rows.map((row) => toSubscription(row)), rowsRead: result.meta.rows_read ?? 0 };
}

/**
 * A subscription the caller may read or change (get, its delivery log, rotate, redeliver): in
 * scope and theirs. The admin reaches every one.
 */
export async function getOwnedSubscriptionRow(db: D1Database, id: string, caller: Caller) {
	return db
		.prepare(`SELECT * FROM webhook_subscriptions s WHERE s.id = ?1 AND ${inScope("?2")} AND ${owned("?3")}`)
		.bind(id, caller.scope, caller.keyId)
		.first()
		.then(parseRow(SubscriptionRow));
}

/** Deletes a subscription and its delivery log. Returns the deleted row, or null if the caller may not. */
export async function deleteSubscription(db: D1Database, id: string, caller: Caller): Promise<SubscriptionRow | null> {
	const [deleted] = await db.batch([
		db
			.prepare(
				`DELETE FROM webhook_subscriptions AS s WHERE s.id = ?1 AND ${inScope("?2")} AND ${owned("?3")} RETURNING *`,
			)
			.bind(id, caller.scope, caller.keyId),
		db
			.prepare(
				`DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE subscription_id = ?1)
				AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1)`,
			)
			.bind(id),
		db
			.prepare(
				`DELETE FROM webhook_deliveries WHERE subscription_id = ?1
				AND NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1)`,
			)
			.bind(id),
	]);
	return batchRows(deleted, SubscriptionRow)[0] ?? null;
}

/**
 * Gives a subscription a new secret; the current one becomes the previous, which keeps signing
 * (next to the new one) for ROTATION_OVERLAP_MS. A secret still in its overlap is dropped by a
 * second rotation. Returns the new secret with the row, or null if the caller may not.
 */
export async function rotateSecret(
	db: D1Database,
	id: string,
	caller: Caller,
	sealingKey: string,
	now = Date.now(),
): Promise<{ row: SubscriptionRow; secret: string } | null> {
	const secret = newWebhookSecret();
	const sealed = await sealSecret(sealingKey, subscriptionSecretId(id), secret);
	const row = await db
		.prepare(
			`UPDATE webhook_subscriptions AS s SET previous_secret = s.secret, previous_secret_expires_at = ?4,
				secret = ?5, updated_at = ?6
			WHERE s.id = ?1 AND ${inScope("?2")} AND ${owned("?3")} RETURNING *`,
		)
		.bind(id, caller.scope, caller.keyId, now + ROTATION_OVERLAP_MS, sealed, now)
		.first()
		.then(parseRow(SubscriptionRow));
	return row ? { row, secret } : null;
}

/** The `disabled_reason` of subscriptions whose key was revoked. */
export const KEY_REVOKED = "key_revoked";

/** Disables the active subscriptions a key created (in the revocation's batch). */
export const disableKeySubscriptions = (db: D1Database, keyId: string, now: number): D1PreparedStatement =>
	db
		.prepare(
			`UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = ?2, updated_at = ?3
			WHERE key_id = ?1 AND status = 'active'`,
		)
		.bind(keyId, KEY_REVOKED, now);
