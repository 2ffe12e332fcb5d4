/**
 * `batch.progress`: the Batch JSON of a running batch (with its rate and ETA), sent as a batch's
 * jobs finish, at most once per interval per batch and channel. A channel is a webhook
 * subscription (its id: at most once a minute per endpoint) or the event stream (`stream`: at most
 * once every five seconds). `claimProgress` is the one place that decides a progress event is due:
 * a conditional upsert of the channel's last send time, so two finishes at once cannot both send.
 */
import { z } from "zod";
import { batchRows, parseRow } from "../d1-rows";
import type { RateLimitedModel, RateLimits } from "../models/rate-limits";
import { BATCH_PROGRESS_EVENT } from "../webhooks/schema";
import { batchPaces, ceilingPerMinute } from "./progress";
import { BatchRow, toBatch } from "./schema";

/** A subscription's endpoint gets a batch's progress at most this often. */
export const WEBHOOK_PROGRESS_INTERVAL_MS = 60_000;
/** The event stream carries a batch's progress at most this often. */
export const STREAM_PROGRESS_INTERVAL_MS = 5_000;
/** The event stream's channel name (subscriptions use their id). */
export const STREAM_CHANNEL = "stream";

const Claimed = z.object({ channel: z.string() });

/** The statement that claims `channel`'s slot for `batchId` at `now` (returns the channel when due). */
export function claimProgressStatement(
	db: D1Database,
	batchId: string,
	channel: string,
	intervalMs: number,
	now: number,
): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO batch_progress_marks (batch_id, channel, sent_at) VALUES (?1, ?2, ?3)
			ON CONFLICT (batch_id, channel) DO UPDATE SET sent_at = excluded.sent_at
			WHERE excluded.sent_at >= batch_progress_marks.sent_at + ?4
			RETURNING channel`,
		)
		.bind(batchId, channel, now, intervalMs);
}

/** The channels among `channels` whose progress of `batchId` is due at `now`; each is recorded as sent. */
export async function claimProgress(
	db: D1Database,
	batchId: string,
	channels: readonly string[],
	intervalMs: number,
	now = Date.now(),
): Promise<string[]> {
	if (channels.length === 0) return [];
	const results = await db.batch(channels.map((c) => claimProgressStatement(db, batchId, c, intervalMs, now)));
	return results.flatMap((result) => batchRows(result, Claimed).map((row) => row.channel));
}

export const BATCH_PROGRESS = BATCH_PROGRESS_EVENT;

/** Settings that bound the ETA: the model chain and its rate limits. */
export interface PaceLimits {
	chain: readonly RateLimitedModel[];
	limits: RateLimits;
}

/**
 * The body of a `batch.progress` event (webhook and stream alike) for the batch of job `jobId`, or
 * null when the job has no batch or its batch has ended (its final event says the rest).
 */
export async function progressOfJobBatch(
	db: D1Database,
	jobId: string,
	pace: PaceLimits,
	now = Date.now(),
): Promise<{ batch: BatchRow; body: string } | null> {
	const batch = await db
		.prepare("SELECT b.* FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE j.id = ?1 AND b.completed_at IS NULL")
		.bind(jobId)
		.first()
		.then(parseRow(BatchRow));
	if (!batch) return null;
	return { batch, body: await progressBody(db, batch, pace, now) };
}

/** The `batch.progress` JSON of a batch at `now`: `{type, timestamp, data: Batch}`, as the webhook sends it. */
export async function progressBody(
	db: D1Database,
	batch: BatchRow,
	pace: PaceLimits,
	now = Date.now(),
): Promise<string> {
	const [measured] = await batchPaces(db, [batch], ceilingPerMinute(pace.chain, pace.limits), now);
	return JSON.stringify({
		type: BATCH_PROGRESS,
		timestamp: new Date(now).toISOString(),
		data: toBatch(batch, measured),
	});
}

/**
 * For the event stream: the `batch.progress` body of batch `batchId` if one is due on the stream
 * (none in the last STREAM_PROGRESS_INTERVAL_MS; this call records it as sent), else null. Null
 * too for a batch that has ended or does not exist. Call it when a job of the batch finishes.
 */
export async function streamProgress(
	db: D1Database,
	batchId: string,
	pace: PaceLimits,
	now = Date.now(),
): Promise<string | null> {
	const batch = await db
		.prepare("SELECT * FROM batches WHERE id = ?1 AND completed_at IS NULL")
		.bind(batchId)
		.first()
		.then(parseRow(BatchRow));
	if (!batch) return null;
	const [due] = await claimProgress(db, batchId, [STREAM_CHANNEL], STREAM_PROGRESS_INTERVAL_MS, now);
	return due === undefined ? null : progressBody(db, batch, pace, now);
}
