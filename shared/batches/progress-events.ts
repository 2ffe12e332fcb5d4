/**
 * `batch.progress`: the Batch JSON of a running batch (with its rate and ETA), recorded as a
 * batch's jobs finish. One `webhook_events` row of type `batch.progress`, its body fixed, at most
 * once every five seconds per batch: the event stream (`GET /v1/events`, which reads the outbox)
 * carries exactly these rows. A subscription that lists the type gets a delivery of the latest
 * such row at most once a minute per batch. Each channel (`stream`, or a subscription's id) claims
 * its slot with a conditional upsert that writes its own token, and what the claim allows (the
 * event row, the delivery) is written in the same transaction only where that token stands, so
 * two finishes at once cannot both send.
 */
import { z } from "zod";
import { batchRows, parseRow, parseRows } from "../d1-rows";
import type { RateLimits } from "../models/rate-limits";
import { deliveryOf } from "../webhooks/delivery-once";
import { newEventId } from "../webhooks/outbox";
import { BATCH_PROGRESS_EVENT } from "../webhooks/schema";
import type { EstimateModel } from "./estimate";
import { batchPaces, ceilingPerMinute } from "./progress";
import { BatchRow, toBatch } from "./schema";

/** The event stream carries a batch's progress at most this often. */
export const STREAM_PROGRESS_INTERVAL_MS = 5_000;
/** A subscription's endpoint gets a batch's progress at most this often. */
export const WEBHOOK_PROGRESS_INTERVAL_MS = 60_000;
/** The event stream's channel name (subscriptions use their id). */
export const STREAM_CHANNEL = "stream";

/**
 * Settings that bound the ETA: the model chain and its rate limits. The chain's first model that
 * writes the batch's language also prices a dry run's estimate, as `GET /v1/batches/{id}` does.
 */
export interface PaceLimits {
	chain: readonly EstimateModel[];
	limits: RateLimits;
}

/** A subscription that wants the batch's progress (its URL is read from it at each attempt). */
export interface ProgressTarget {
	id: string;
}

/** The claim of `channel`'s slot for `batchId` at `now` under `token` (changes nothing when not due). */
function claim(db: D1Database, batchId: string, channel: string, intervalMs: number, now: number, token: string) {
	return db
		.prepare(
			`INSERT INTO batch_progress_marks (batch_id, channel, sent_at, token) VALUES (?1, ?2, ?3, ?5)
			ON CONFLICT (batch_id, channel) DO UPDATE SET sent_at = excluded.sent_at, token = excluded.token
			WHERE excluded.sent_at >= batch_progress_marks.sent_at + ?4`,
		)
		.bind(batchId, channel, now, intervalMs, token);
}

/**
 * SQL true while batch `?2` has not ended. `batch` was read before this transaction: its last job
 * may have finished meanwhile, and a progress recorded after the batch's final event would follow
 * it on the stream with a running batch (a client waiting for the end would read it as not ended).
 */
const STILL_RUNNING = "EXISTS (SELECT 1 FROM batches WHERE id = ?2 AND completed_at IS NULL)";

/** SQL true when the claim of channel `?c` for batch `?b` is the one made with token `?t`. */
const claimed = (b: string, c: string, t: string) =>
	`EXISTS (SELECT 1 FROM batch_progress_marks WHERE batch_id = ${b} AND channel = ${c} AND token = ${t})`;

/** The running batch of job `jobId`, or null (no batch, or it has ended: its final event says the rest). */
export function runningBatchOfJob(db: D1Database, jobId: string): Promise<BatchRow | null> {
	return db
		.prepare("SELECT b.* FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE j.id = ?1 AND b.completed_at IS NULL")
		.bind(jobId)
		.first()
		.then(parseRow(BatchRow));
}

/** The `batch.progress` JSON of a batch at `now`: `{type, timestamp, data: Batch}`, as stream and webhook carry it. */
export async function progressBody(
	db: D1Database,
	batch: BatchRow,
	pace: PaceLimits,
	now = Date.now(),
): Promise<string> {
	const ceiling = (row: BatchRow) => ceilingPerMinute(pace.chain, pace.limits, row.language);
	const [measured] = await batchPaces(db, [batch], ceiling, now);
	return JSON.stringify({
		type: BATCH_PROGRESS_EVENT,
		timestamp: new Date(now).toISOString(),
		data: toBatch(batch, measured, pace.chain),
	});
}

const DeliveryId = z.object({ id: z.string() });
const Mark = z.object({ channel: z.string(), sent_at: z.number() });

/**
 * Whether any channel may be due at `now`, from the batch's marks (a few rows): most finishes fall
 * inside every interval, and then the rate is not measured at all. The claims decide.
 */
async function anyDue(db: D1Database, batchId: string, targets: readonly ProgressTarget[], now: number) {
	const marks = await db
		.prepare("SELECT channel, sent_at FROM batch_progress_marks WHERE batch_id = ?1")
		.bind(batchId)
		.all()
		.then(parseRows(Mark));
	const last = new Map(marks.map((m) => [m.channel, m.sent_at]));
	const due = (channel: string, intervalMs: number) =>
		now >= (last.get(channel) ?? Number.NEGATIVE_INFINITY) + intervalMs;
	return (
		due(STREAM_CHANNEL, STREAM_PROGRESS_INTERVAL_MS) || targets.some((t) => due(t.id, WEBHOOK_PROGRESS_INTERVAL_MS))
	);
}

/** What a call of `recordProgress` wrote: deliveries, and the stream's event if it was due. */
export interface RecordedProgress {
	deliveries: string[];
	event: string | null;
}

/**
 * Records `batch`'s progress at `now`: its `batch.progress` event if the stream's five seconds have
 * passed, and for each of `targets` whose minute has passed a delivery of the batch's latest
 * progress event (this one, or one at most five seconds old), all in one transaction. Returns the
 * ids of the deliveries made, and the new event's id if one was recorded (the event hub is told of
 * it). `newDeliveryId` names each delivery.
 */
export async function recordProgress(
	db: D1Database,
	batch: BatchRow,
	targets: readonly ProgressTarget[],
	pace: PaceLimits,
	newDeliveryId: () => string,
	now = Date.now(),
): Promise<RecordedProgress> {
	if (!(await anyDue(db, batch.id, targets, now))) return { deliveries: [], event: null };
	const eventId = newEventId(now);
	const token = crypto.randomUUID();
	const body = await progressBody(db, batch, pace, now);
	const latest = `(SELECT id FROM webhook_events WHERE batch_id = ?2 AND type = '${BATCH_PROGRESS_EVENT}'
		ORDER BY created_at DESC, id DESC LIMIT 1)`;
	const results = await db.batch([
		claim(db, batch.id, STREAM_CHANNEL, STREAM_PROGRESS_INTERVAL_MS, now, token),
		// Already dispatched: its deliveries are made here, and the outbox's sweeper must not fan it out.
		db
			.prepare(
				`INSERT INTO webhook_events (id, batch_id, type, payload, created_at, dispatched_at)
				SELECT ?1, ?2, '${BATCH_PROGRESS_EVENT}', ?3, ?4, ?4
				WHERE ${claimed("?2", `'${STREAM_CHANNEL}'`, "?5")} AND ${STILL_RUNNING}`,
			)
			.bind(eventId, batch.id, body, now, token),
		...targets.flatMap((target) => [
			claim(db, batch.id, target.id, WEBHOOK_PROGRESS_INTERVAL_MS, now, token),
			db
				.prepare(
					`INSERT INTO webhook_deliveries (id, event_id, subscription_id, url, key_id, status,
						next_attempt_at, created_at, updated_at)
					SELECT ?1, ${latest}, ?3, NULL, NULL, 'pending', ?4, ?4, ?4
					WHERE ${claimed("?2", "?3", "?5")} AND ${latest} IS NOT NULL AND ${STILL_RUNNING}
						AND NOT EXISTS (${deliveryOf(latest, "?3")})
					RETURNING id`,
				)
				.bind(newDeliveryId(), batch.id, target.id, now, token),
		]),
	]);
	return {
		deliveries: results.slice(2).flatMap((result) => batchRows(result, DeliveryId).map((row) => row.id)),
		event: (results[1]?.meta.changes ?? 0) > 0 ? eventId : null,
	};
}
