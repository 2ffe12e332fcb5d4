/**
 * Webhook subscriptions in D1 (migrations/0003_webhooks.sql): create (the secret is returned this
 * once), list and get within a caller's scope, and delete (with its delivery log).
 * Scope: a caller limited to prefix `p` sees only subscriptions whose own prefix starts with `p`.
 */
import { z } from "zod";
import { batchRows, parseRow, parseRows } from "../../../shared/d1-rows";
import { ulid } from "../../../shared/ids";
import {
	type CreatedWebhookSubscription,
	SubscriptionRow,
	WebhookEventType,
	type WebhookSubscription,
} from "../../../shared/webhooks/schema";
import { newWebhookSecret } from "../../../shared/webhooks/sign";

export function toSubscription(row: SubscriptionRow): WebhookSubscription {
	return {
		id: row.id,
		url: row.url,
		events: z.array(WebhookEventType).parse(JSON.parse(row.events)),
		prefix: row.prefix,
		status: row.status,
		disabled_reason: row.disabled_reason,
		created_at: new Date(row.created_at).toISOString(),
	};
}

/** SQL condition (on alias `s`) for subscriptions inside the scope bound to `param` (NULL: everything). */
export const inScope = (param: string) =>
	`(${param} IS NULL OR (s.prefix IS NOT NULL AND substr(s.prefix, 1, length(${param})) = ${param}))`;

export async function createSubscription(
	db: D1Database,
	input: { url: string; events: WebhookEventType[]; prefix: string | null; keyId: string | null },
	now = Date.now(),
): Promise<CreatedWebhookSubscription> {
	const secret = newWebhookSecret();
	const row = await db
		.prepare(
			`INSERT INTO webhook_subscriptions (id, url, events, prefix, secret, key_id, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?) RETURNING *`,
		)
		.bind(`wh_${ulid(now)}`, input.url, JSON.stringify(input.events), input.prefix, secret, input.keyId, now, now)
		.first()
		.then(parseRow(SubscriptionRow));
	if (!row) throw new Error("The subscription insert returned no row");
	return { ...toSubscription(row), secret };
}

/** Newest first; subscriptions are few, so one page. */
export async function listSubscriptions(db: D1Database, scope: string | null): Promise<WebhookSubscription[]> {
	const results = await db
		.prepare(
			`SELECT * FROM webhook_subscriptions s WHERE ${inScope("?1")} ORDER BY created_at DESC, id DESC LIMIT 1000`,
		)
		.bind(scope)
		.all()
		.then(parseRows(SubscriptionRow));
	return results.map(toSubscription);
}

export async function getSubscriptionRow(
	db: D1Database,
	id: string,
	scope: string | null,
): Promise<SubscriptionRow | null> {
	return db
		.prepare(`SELECT * FROM webhook_subscriptions s WHERE s.id = ?1 AND ${inScope("?2")}`)
		.bind(id, scope)
		.first()
		.then(parseRow(SubscriptionRow));
}

/** Deletes a subscription and its delivery log. Returns the deleted row, or null if none was in scope. */
export async function deleteSubscription(
	db: D1Database,
	id: string,
	scope: string | null,
): Promise<SubscriptionRow | null> {
	const [deleted] = await db.batch([
		db
			.prepare(`DELETE FROM webhook_subscriptions AS s WHERE s.id = ?1 AND ${inScope("?2")} RETURNING *`)
			.bind(id, scope),
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
