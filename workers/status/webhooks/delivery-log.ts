/**
 * The delivery log of a subscription as the API shows it: deliveries newest first (keyset cursor
 * over created_at, id) with every attempt, and manual redelivery, which puts a finished delivery
 * back to pending under the same id, so the receiver sees the same `webhook-id` again.
 */
import { z } from "zod";
import { parseRow, parseRows } from "../../../shared/d1-rows";
import { iso } from "../../../shared/iso";
import { attemptsOf } from "../../../shared/webhooks/attempts";
import { eventJobId, isEventOfJob } from "../../../shared/webhooks/job-event";
import {
	AttemptRow,
	DeliveryRow,
	EventRow,
	type WebhookAttempt,
	type WebhookDelivery,
} from "../../../shared/webhooks/schema";
import { keysetCursor, keysetPage, type Position } from "../keyset-cursor";
import { type Caller, inScope, owned } from "./subscriptions";

export const deliveryCursor = keysetCursor("msg_");

/** A delivery with the type and the job or batch of its event. */
const LogRow = DeliveryRow.extend({
	/** Where it goes: the callback URL, or its subscription's URL (a delivery does not repeat it). */
	target_url: z.string(),
	event_type: EventRow.shape.type,
	job_id: EventRow.shape.job_id,
	batch_id: EventRow.shape.batch_id,
});
type LogRow = z.infer<typeof LogRow>;

function toDelivery(row: LogRow, attempts: AttemptRow[]): WebhookDelivery {
	return {
		id: row.id,
		event_id: row.event_id,
		event_type: row.event_type,
		job_id: row.job_id,
		batch_id: row.batch_id,
		url: row.target_url,
		status: row.status,
		attempts: row.attempts,
		last_status_code: row.last_status_code,
		last_error: row.last_error,
		created_at: new Date(row.created_at).toISOString(),
		completed_at: iso(row.completed_at),
		attempt_log: attempts.map(
			(a): WebhookAttempt => ({
				attempt: a.attempt,
				started_at: new Date(a.started_at).toISOString(),
				status_code: a.status_code,
				duration_ms: a.duration_ms,
				error: a.error,
			}),
		),
	};
}

const SELECT_LOG = `SELECT d.*,
		coalesce(d.url, (SELECT ts.url FROM webhook_subscriptions ts WHERE ts.id = d.subscription_id), '') AS target_url,
		e.type AS event_type, ${eventJobId("e.")} AS job_id, e.batch_id
	FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id`;

async function withAttempts(db: D1Database, rows: LogRow[]): Promise<WebhookDelivery[]> {
	if (rows.length === 0) return [];
	const results = await db
		.prepare(attemptsOf("SELECT value FROM json_each(?1)"))
		.bind(JSON.stringify(rows.map((r) => r.id)))
		.all()
		.then(parseRows(AttemptRow));
	return rows.map((row) =>
		toDelivery(
			row,
			results.filter((a) => a.delivery_id === row.id),
		),
	);
}

export async function listDeliveries(
	db: D1Database,
	subscriptionId: string,
	limit: number,
	after: Position | null,
): Promise<{ data: WebhookDelivery[]; nextCursor: string | null; rowsRead: number }> {
	// `created_at <= t` bounds the index range (an `IS NULL OR` would walk from the newest delivery
	// on every page); before the first page t is past every delivery.
	const result = await db
		.prepare(
			`${SELECT_LOG} WHERE d.subscription_id = ?1
			AND d.created_at <= ?2 AND (d.created_at < ?2 OR d.id < ?3)
			ORDER BY d.created_at DESC, d.id DESC LIMIT ?4`,
		)
		.bind(subscriptionId, after?.t ?? Number.MAX_SAFE_INTEGER, after?.i ?? "", limit + 1)
		.all();
	const page = keysetPage(parseRows(LogRow)(result), limit, deliveryCursor.encode);
	return {
		data: await withAttempts(db, page.rows),
		nextCursor: page.nextCursor,
		rowsRead: result.meta.rows_read ?? 0,
	};
}

export async function getDelivery(db: D1Database, subscriptionId: string, id: string): Promise<WebhookDelivery | null> {
	const row = await db
		.prepare(`${SELECT_LOG} WHERE d.id = ?1 AND d.subscription_id = ?2`)
		.bind(id, subscriptionId)
		.first()
		.then(parseRow(LogRow));
	if (!row) return null;
	const [delivery] = await withAttempts(db, [row]);
	return delivery ?? null;
}

const DeliveryId = DeliveryRow.pick({ id: true });

export type RedeliverResult =
	| { kind: "redelivered"; delivery: WebhookDelivery }
	| { kind: "missing" }
	/** Still being attempted: there is nothing to redeliver yet. */
	| { kind: "pending" };

/** Puts a finished delivery back to pending; the caller then enqueues its message. */
export async function reopenDelivery(
	db: D1Database,
	subscriptionId: string,
	id: string,
	now = Date.now(),
): Promise<RedeliverResult> {
	const reopened = await db
		.prepare(
			`UPDATE webhook_deliveries SET status = 'pending', completed_at = NULL, next_attempt_at = ?3, updated_at = ?3
			WHERE id = ?1 AND subscription_id = ?2 AND status IN ('succeeded', 'failed') RETURNING id`,
		)
		.bind(id, subscriptionId, now)
		.first()
		.then(parseRow(DeliveryId));
	const delivery = await getDelivery(db, subscriptionId, id);
	if (!delivery) return { kind: "missing" };
	return reopened ? { kind: "redelivered", delivery } : { kind: "pending" };
}

/**
 * A job's deliveries, oldest first, each with the subscription it went to (null: the job's own
 * callback URL). A key sees the callback delivery of a job it made and the deliveries of the
 * subscriptions it created, never another caller's receiver: a callback URL may carry its
 * receiver's token, and the job's JSON does not show it. The admin sees every one.
 */
export async function listJobDeliveries(
	db: D1Database,
	jobId: string,
	caller: Caller,
): Promise<(WebhookDelivery & { subscription_id: string | null })[]> {
	const results = await db
		.prepare(
			`${SELECT_LOG} LEFT JOIN webhook_subscriptions s ON s.id = d.subscription_id
			WHERE ${isEventOfJob("e.", "?1")} AND ((${inScope("?2")} AND ${owned("?3")})
				OR (d.subscription_id IS NULL AND (?3 IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = ?1 AND j.key_id = ?3))))
			ORDER BY d.created_at, d.id`,
		)
		.bind(jobId, caller.scope, caller.keyId)
		.all()
		.then(parseRows(LogRow));
	const deliveries = await withAttempts(db, results);
	return deliveries.map((delivery, i) => ({ ...delivery, subscription_id: results[i]?.subscription_id ?? null }));
}
