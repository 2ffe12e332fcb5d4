/**
 * Write-back: a succeeded job's result put where it is used, once. `sidecar` writes the text (or
 * the JSON) to an object next to the image; `metadata` rewrites the image with its bytes unchanged
 * and the text in its custom metadata `caption` (with `caption-job`). Mode `skip` leaves an
 * existing sidecar or caption alone.
 *
 * Exactly once: the finish that makes the job succeed marks its write-back `pending` in the same
 * statement; whoever takes it writes under a short lease and records the outcome. A redelivered
 * message finds the job finished and only finishes a write-back still pending. Transient R2 errors
 * are retried here a few times, then by the message's own retries; a change of the image, a
 * result too large for metadata, or a sidecar key R2 cannot take (over its 1,024 bytes) fails the
 * write-back for good (`write_back.status` `failed`).
 *
 * Locally R2 sends no notifications, so each write enqueues the one R2 would send: the consumer
 * must recognise it as an echo (./echoes.ts) and make no job of it.
 */
import type { JobRow } from "../../shared/jobs/schema";
import { log } from "../../shared/log";
import { CAPTION_METADATA, sidecarKey, WRITE_BACK_MARK } from "../../shared/outputs/sidecar";
import { OutputText, WriteBackText } from "../../shared/outputs/spec";
import { putObjectNotification } from "../../shared/queue/caption-jobs";
import { ACK, type Outcome, retryAfter } from "../../shared/queue/runner";
import { sendOrLeaveToSweeper } from "../../shared/queue/send";
import {
	MAX_KEY_BYTES,
	MAX_METADATA_BYTES,
	metadataBytes,
	R2_INVALID_OBJECT_NAME,
	R2_METADATA_TOO_LARGE,
	r2ErrorCode,
	utf8Length,
} from "../../shared/r2-limits";
import type { ConsumerSettings } from "./config";

/** Tries of one write inside a delivery, with these pauses between them. */
const PAUSES_MS = [100, 400];

export interface WriteBackEnv {
	DB: D1Database;
	BUCKET: R2Bucket;
	CAPTION_JOBS: Queue;
}

type Written = { status: "written" | "skipped"; echo: { key: string; size: number; etag: string } | null };

/** A write-back that cannot succeed by trying again. */
class PermanentWriteBackError extends Error {}

/**
 * Does the write-back of a finished job if it is pending and no one else holds it. `attempts` is
 * the delivery's; its last delivery records a failure rather than asking for another.
 */
export async function writeBackJob(
	env: WriteBackEnv,
	settings: ConsumerSettings,
	job: JobRow,
	attempts: number,
): Promise<Outcome> {
	if (job.status !== "succeeded" || job.write_back_status !== "pending") return ACK;
	const now = Date.now();
	const lease = now + settings.LEASE_SECONDS * 1000;
	const taken = await env.DB.prepare(
		`UPDATE jobs SET write_back_lease = ?2 WHERE id = ?1 AND write_back_status = 'pending'
			AND (write_back_lease IS NULL OR write_back_lease < ?3) RETURNING id`,
	)
		.bind(job.id, lease, now)
		.first("id");
	if (taken === null) {
		// Held by another delivery: look again once its lease ends, in case that one dies.
		const held = job.write_back_lease ?? now;
		return held > now ? retryAfter((held - now) / 1000 + 1) : ACK;
	}
	try {
		// A newer caption of the object (a re-caption, an upload of the same bytes with other headers)
		// is the current one: this older one is not written over it, or over what it wrote.
		if (await supersededBy(env.DB, job)) {
			await settle(env.DB, job.id, lease, "skipped", null);
			return ACK;
		}
		const written = await withRetries(() => write(env.BUCKET, job));
		await settle(env.DB, job.id, lease, written.status, null);
		if (written.echo && settings.DEPLOY_MODE === "local") {
			await sendOrLeaveToSweeper(
				env.CAPTION_JOBS,
				{ body: putObjectNotification({ bucket: settings.BUCKET_NAME, ...written.echo }) },
				{ queue: "caption-jobs", job_id: job.id, echo: written.echo.key },
			);
		}
		return ACK;
	} catch (error) {
		const message = error instanceof Error ? error.message : String(error);
		const lastTry = error instanceof PermanentWriteBackError || attempts > settings.CAPTION_MAX_RETRIES;
		log("warn", "write_back_failed", { job_id: job.id, error: message, final: lastTry });
		if (lastTry) {
			await settle(env.DB, job.id, lease, "failed", message);
			return ACK;
		}
		await env.DB.prepare("UPDATE jobs SET write_back_lease = NULL WHERE id = ?1 AND write_back_lease = ?2")
			.bind(job.id, lease)
			.run();
		return retryAfter(settings.RETRY_BASE_SECONDS * 2 ** Math.min(attempts, 6));
	}
}

/**
 * Whether another job of the same object succeeded after this one, so holds its current caption
 * (the latest to finish, as /v1/captions has it; the jobs_key_created index: the object's few jobs).
 */
async function supersededBy(db: D1Database, job: JobRow): Promise<boolean> {
	if (job.completed_at === null) return false;
	const newer = await db
		.prepare(
			`SELECT 1 AS newer FROM jobs WHERE key = ?2 AND bucket = ?1 AND status = 'succeeded'
				AND (completed_at > ?3 OR (completed_at = ?3 AND id > ?4)) LIMIT 1`,
		)
		.bind(job.bucket, job.key, job.completed_at, job.id)
		.first();
	return newer !== null;
}

async function settle(db: D1Database, id: string, lease: number, status: string, error: string | null) {
	await db
		.prepare(
			`UPDATE jobs SET write_back_status = ?3, write_back_error = ?4, write_back_lease = NULL
			WHERE id = ?1 AND write_back_lease = ?2`,
		)
		.bind(id, lease, status, error)
		.run();
}

async function withRetries<T>(run: () => Promise<T>): Promise<T> {
	for (const pause of PAUSES_MS) {
		try {
			return await run();
		} catch (error) {
			if (error instanceof PermanentWriteBackError) throw error;
			await new Promise((resolve) => setTimeout(resolve, pause));
		}
	}
	return run();
}

async function write(bucket: R2Bucket, job: JobRow): Promise<Written> {
	const target = WriteBackText.parse(job.write_back);
	const text = job.caption ?? "";
	if (target.target === "sidecar") {
		const json = job.output !== null && typeof OutputText.parse(job.output) !== "string";
		const key = sidecarKey(job.key, json);
		const unfit = (why: string) =>
			new PermanentWriteBackError(
				`R2 cannot store the sidecar ${key}: ${why}. Use a metadata write-back or a shorter key.`,
			);
		const keyBytes = utf8Length(key);
		if (keyBytes > MAX_KEY_BYTES) throw unfit(`its key is ${keyBytes} bytes, over R2's ${MAX_KEY_BYTES}`);
		// A sidecar describes the image beside it: none for a version replaced since the caption (its
		// own job writes the new one's, if asked). The image can still change between this look and
		// the put; a later job's sidecar then replaces this one.
		const image = await bucket.head(job.key);
		if (image?.etag !== job.etag) {
			throw new PermanentWriteBackError(
				`The object ${job.key} changed since it was captioned; no sidecar was written for the old version`,
			);
		}
		if (target.mode === "skip" && (await bucket.head(key)) !== null) return { status: "skipped", echo: null };
		const put = await bucket
			.put(key, text, {
				httpMetadata: { contentType: json ? "application/json" : "text/plain; charset=utf-8" },
				customMetadata: { [WRITE_BACK_MARK]: job.id },
			})
			.catch((error: unknown) => {
				if (r2ErrorCode(error) === R2_INVALID_OBJECT_NAME) throw unfit("R2 refused its key");
				throw error;
			});
		return { status: "written", echo: { key, size: put.size, etag: put.etag } };
	}
	const object = await bucket.get(job.key, { onlyIf: { etagMatches: job.etag } });
	if (object === null || !("body" in object)) {
		throw new PermanentWriteBackError(
			`The object ${job.key} changed since it was captioned; its metadata was left alone`,
		);
	}
	const existing = object.customMetadata ?? {};
	if (target.mode === "skip" && existing[CAPTION_METADATA] !== undefined) {
		await object.body.cancel();
		return { status: "skipped", echo: null };
	}
	const customMetadata = { ...existing, [CAPTION_METADATA]: text, [WRITE_BACK_MARK]: job.id };
	const bytes = metadataBytes(customMetadata);
	const tooLarge = (counted: string) =>
		new PermanentWriteBackError(
			`The result makes ${bytes} bytes of custom metadata${counted}; R2 allows ${MAX_METADATA_BYTES}. Use a sidecar.`,
		);
	if (bytes > MAX_METADATA_BYTES) {
		await object.body.cancel();
		throw tooLarge("");
	}
	// The same bytes, streamed through: R2 needs the length of a streamed body up front.
	const body = new FixedLengthStream(object.size);
	const [put] = await Promise.all([
		bucket.put(job.key, body.readable, {
			httpMetadata: object.httpMetadata,
			customMetadata,
			onlyIf: { etagMatches: job.etag },
		}),
		object.body.pipeTo(body.writable),
	]).catch((error: unknown) => {
		// R2 counts some characters as more bytes than UTF-8 does (shared/r2-limits.ts): no retry fits them.
		if (r2ErrorCode(error) === R2_METADATA_TOO_LARGE) throw tooLarge(" (in UTF-8; R2 counted more)");
		throw error;
	});
	if (put === null) {
		throw new PermanentWriteBackError(
			`The object ${job.key} changed while its metadata was written; it was left alone`,
		);
	}
	return { status: "written", echo: { key: job.key, size: put.size, etag: put.etag } };
}
