/**
 * D1 access for the jobs table: claiming under a lease, finishing, and reading jobs.
 * A caption costs two writes: the claim (which also creates a notification job) and the finish.
 */

import { z } from "zod";
import { captionVersionOf } from "../captions/version-sql";
import { batchRows, parseRow } from "../d1-rows";
import { newJobId } from "../ids";
import type { Usage } from "../models/usage";
import type { ObjectVersion } from "../queue/caption-jobs";
import { groupBatchSeq } from "./batched-counts";
import { notificationJobOf } from "./notification-once";
import { type JobErrorCode, JobRow } from "./schema";
import { STATS_MARK_CHANGED, STATS_MARK_INSERTED } from "./stats-mark";
import { setJobText } from "./text-sql";
import { JOB_COLUMNS } from "./texts";

/** The columns the consumer settles when a job finishes, whatever its outcome. */
export interface JobResultFields {
	readonly contentType?: string | null;
	readonly prompt?: string | null;
	readonly maxTokens?: number | null;
	readonly callbackUrl?: string | null;
	readonly model?: string | null;
	readonly inferenceMs?: number | null;
	/** The tokens this attempt's model calls reported; added to the job's (null: none reported). */
	readonly usage?: Usage | null;
	/** The output, language and write-back the job ran with, in their text forms (shared/outputs/spec.ts). */
	readonly output?: string | null;
	readonly language?: string | null;
	readonly writeBack?: string | null;
}

export interface Lease {
	token: string;
	now: number;
	expiresAt: number;
}

/** A claim's result: the job claimed under the lease, a job that may not be claimed now, or none. */
export type ClaimResult = { kind: "claimed"; job: JobRow } | { kind: "existing"; job: JobRow } | { kind: "missing" };

const CLAIMABLE = `(jobs.status = 'queued' OR (jobs.status = 'processing' AND jobs.lease_expires_at < ?))`;

/** A claim of a notification's object version: its statements, and how to read their results. */
export interface ClaimWrite {
	statements: D1PreparedStatement[];
	/** The job claimed, from the results of `statements` in order (null: nothing claimed). */
	claimed(results: D1Result[]): JobRow | null;
	/** The job that was not claimed (a duplicate, running or finished), read after the claim. */
	existing(db: D1Database): Promise<JobRow | null>;
}

/**
 * Creates the job of an object version from its notification, or claims the existing one if it
 * is queued or its lease has expired, in one transaction (its two statements in one batch).
 * `counted`: a group's statements count this claim (shared/jobs/batched-counts.ts), so it marks its row.
 */
export function claimNotificationWrite(
	db: D1Database,
	n: ObjectVersion,
	eventTime: number,
	lease: Lease,
	optionsKey: string,
	counted = false,
): ClaimWrite {
	const version = notificationJobOf("?2", "?3", "?4", "?10");
	const params = [
		newJobId(lease.now),
		n.bucket,
		n.key,
		n.etag,
		n.size,
		lease.token,
		lease.expiresAt,
		lease.now,
		Math.max(0, lease.now - eventTime),
		optionsKey,
	];
	return {
		// The version's job claimed if it exists and may be claimed, else made claimed.
		statements: [
			db
				.prepare(
					`UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = ?6,
						lease_expires_at = ?7, updated_at = ?8, started_at = coalesce(started_at, ?8),
						queue_ms = coalesce(queue_ms, ?9)${counted ? `, ${STATS_MARK_CHANGED}` : ""}
					WHERE id = (SELECT id FROM jobs WHERE ${version}) AND ${CLAIMABLE.replace("?", "?8")}
					RETURNING ${JOB_COLUMNS}`,
				)
				.bind(...params),
			db
				.prepare(
					`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, lease_token,
						lease_expires_at, created_at, updated_at, started_at, queue_ms, options_key${counted ? ", stats_mark" : ""})
					SELECT ?1, 'notification', ?2, ?3, ?4, ?5, 'processing', 1, ?6, ?7, ?8, ?8, ?8, ?9, ?10${counted ? `, ${STATS_MARK_INSERTED}` : ""}
					WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE ${version})
					RETURNING ${JOB_COLUMNS}`,
				)
				.bind(...params),
		],
		claimed: ([updated, inserted]) => [...batchRows(updated, JobRow), ...batchRows(inserted, JobRow)][0] ?? null,
		existing: (d) => getNotificationJobRow(d, { ...n, optionsKey }),
	};
}

/** Claims a job that already has a row (API-requested, or re-queued by the sweeper); `counted` as above. */
export function claimByIdWrite(db: D1Database, id: string, lease: Lease, counted = false): ClaimWrite {
	return {
		statements: [
			db
				.prepare(
					`UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = ?2,
						lease_expires_at = ?3, updated_at = ?4, started_at = coalesce(started_at, ?4),
						queue_ms = coalesce(queue_ms, ?4 - created_at)${counted ? `, ${STATS_MARK_CHANGED}` : ""}
					WHERE id = ?1 AND ${CLAIMABLE.replace("?", "?4")}
					RETURNING ${JOB_COLUMNS}`,
				)
				.bind(id, lease.token, lease.expiresAt, lease.now),
		],
		claimed: ([updated]) => batchRows(updated, JobRow)[0] ?? null,
		existing: (d) => getJobRow(d, id),
	};
}

/** The claim's result once its statements ran: claimed, or the job that may not be claimed now, or none. */
export async function claimResult(db: D1Database, write: ClaimWrite, results: D1Result[]): Promise<ClaimResult> {
	const claimed = write.claimed(results);
	if (claimed) return { kind: "claimed", job: claimed };
	const existing = await write.existing(db);
	return existing ? { kind: "existing", job: existing } : { kind: "missing" };
}

/**
 * Creates the job of an object version from its notification, or claims the existing one if it
 * is queued or its lease has expired. A duplicate of a job that is running or finished is
 * returned as `existing` and must not be processed again.
 */
export async function claimNotificationJob(
	db: D1Database,
	n: ObjectVersion,
	eventTime: number,
	lease: Lease,
	optionsKey: string,
): Promise<ClaimResult> {
	const write = claimNotificationWrite(db, n, eventTime, lease, optionsKey);
	return claimResult(db, write, await db.batch(write.statements));
}

/** Claims a job that already has a row (API-requested, or re-queued by the sweeper). */
export async function claimJobById(db: D1Database, id: string, lease: Lease): Promise<ClaimResult> {
	const write = claimByIdWrite(db, id, lease);
	return claimResult(db, write, await db.batch(write.statements));
}

/**
 * A job's usage is the sum of the tokens of every call made for it: an attempt's are added to what
 * earlier attempts recorded, in the statement that ends the attempt (a release or the finish), so
 * the batch's sum moves with them (migrations/0025_usage.sql). NULL (no call reported any) adds nothing.
 */
const ADD_USAGE = (input: string, output: string) =>
	`input_tokens = CASE WHEN ${input} IS NULL THEN input_tokens ELSE coalesce(input_tokens, 0) + ${input} END,
	output_tokens = CASE WHEN ${output} IS NULL THEN output_tokens ELSE coalesce(output_tokens, 0) + ${output} END`;

/** How a claimed job ends. */
export type FinishOutcome =
	/** `result` is the validated result as JSON text (absent: the caption is the result); `caption` its text form. */
	{ status: "succeeded"; caption: string; result?: string } | { status: "failed"; code: JobErrorCode; message: string };

/**
 * Settles a claimed job: RETURNING gives the finished row, or none when the lease was lost
 * (another consumer reclaimed the job), so a job finishes once. Callers batch it with the
 * webhook outbox insert (shared/webhooks/outbox.ts). A succeeded job's caption becomes the next
 * version of its object here, in the job's own row (`caption_version`: the object's versions so
 * far + 1, read before the trigger jobs_caption_version adds it to `captions`), not by a second
 * UPDATE from that trigger (migrations/0030_fewer_rows.sql). In a group of finishes written
 * together (`group`: their countedFinishes, shared/jobs/batched-counts.ts), a batch job takes its
 * completion number here too, the group's statement having raised its batch's `finished_seq`, and
 * the finish marks its row as counted by the group (STATS_MARK_CHANGED).
 */
export function finishStatement(
	db: D1Database,
	job: JobRow,
	now: number,
	outcome: FinishOutcome,
	fields: JobResultFields,
	group: string | null = null,
): D1PreparedStatement {
	const caption = outcome.status === "succeeded" ? outcome.caption : null;
	// A text result equal to the caption is not stored twice: a null result reads as the caption.
	const result =
		outcome.status === "succeeded" && outcome.result !== undefined && outcome.result !== JSON.stringify(outcome.caption)
			? outcome.result
			: null;
	const code = outcome.status === "failed" ? outcome.code : null;
	const message = outcome.status === "failed" ? outcome.message : null;
	return db
		.prepare(
			`UPDATE jobs SET status = ?3, caption = ?4, error_code = ?5, error_message = ?6,
				${setJobText("content_type", "?7")}, ${setJobText("prompt", "?8")},
				max_tokens = coalesce(?9, max_tokens), callback_url = coalesce(?10, callback_url),
				${setJobText("model", "?11")}, inference_ms = ?12, completed_at = ?13, updated_at = ?13,
				total_ms = ?13 - created_at, lease_token = NULL, lease_expires_at = NULL,
				result = ?14, ${setJobText("output", "?15")}, language = coalesce(?16, language),
				write_back = coalesce(?17, write_back),
				write_back_status = CASE WHEN coalesce(?17, write_back) IS NULL THEN NULL
					WHEN ?3 = 'succeeded' THEN 'pending' ELSE 'not_attempted' END,
				${ADD_USAGE("?18", "?19")},
				caption_version = ${captionVersionOf("?3", "?4")}${group === null ? "" : `, batch_seq = ${groupBatchSeq("?20")}, ${STATS_MARK_CHANGED}`}
			WHERE id = ?1 AND status = 'processing' AND lease_token = ?2
			RETURNING ${JOB_COLUMNS}`,
		)
		.bind(
			job.id,
			job.lease_token,
			outcome.status,
			caption,
			code,
			message,
			fields.contentType ?? null,
			fields.prompt ?? null,
			fields.maxTokens ?? null,
			fields.callbackUrl ?? null,
			fields.model ?? null,
			fields.inferenceMs ?? null,
			now,
			result,
			fields.output ?? null,
			fields.language ?? null,
			fields.writeBack ?? null,
			fields.usage?.inputTokens ?? null,
			fields.usage?.outputTokens ?? null,
			...(group === null ? [] : [group]),
		);
}

/** Extends a processing job's lease, if `token` still holds it; false when another delivery took it. */
export async function renewLease(db: D1Database, id: string, token: string, until: number): Promise<boolean> {
	const row = await db
		.prepare(
			"UPDATE jobs SET lease_expires_at = ?3 WHERE id = ?1 AND status = 'processing' AND lease_token = ?2 RETURNING id",
		)
		.bind(id, token, until)
		.first();
	return row !== null;
}

/**
 * Gives a claimed job back to the queue after a transient failure, to be claimed again, with the
 * tokens this attempt's calls reported (a repair that must wait follows an answer that cost some).
 * `retryAt` is when its message comes back (its retry's delay): a queued job's `lease_expires_at`,
 * so that the stalled-job sweep does not take a message still on its way for a lost one (a model's
 * cool-down can hold it for up to an hour) and spend an attempt on sending it again.
 */
export async function releaseJob(
	db: D1Database,
	job: JobRow,
	now: number,
	usage: Usage | null = null,
	retryAt: number | null = null,
): Promise<void> {
	await db
		.prepare(
			`UPDATE jobs SET status = 'queued', lease_token = NULL, lease_expires_at = ?6, updated_at = ?3,
				${ADD_USAGE("?4", "?5")}
			WHERE id = ?1 AND status = 'processing' AND lease_token = ?2`,
		)
		.bind(job.id, job.lease_token, now, usage?.inputTokens ?? null, usage?.outputTokens ?? null, retryAt)
		.run();
}

/**
 * Which unfinished jobs a fail may take: any, only those no live lease holds (queued, or lease
 * expired), or those matching a caller's condition (on `?4`, now, and its own parameters from `?5`).
 */
export type FailableJobs = "unfinished" | "unheld" | { sql: string; params: unknown[] };

const FAILABLE: Record<"unfinished" | "unheld", string> = {
	unfinished: "status IN ('queued', 'processing')",
	unheld: "(status = 'queued' OR (status = 'processing' AND (lease_expires_at IS NULL OR lease_expires_at < ?4)))",
};

/**
 * Fails a job that is not terminal yet, or with `"unheld"` only one that no consumer holds under a
 * live lease (dead letters), or only one matching the caller's condition (the stalled-job sweeper). The condition is in the UPDATE itself, so a
 * claim made between a read and this write is never overridden. RETURNING gives the failed row,
 * or none if the job was left alone.
 */
export function failUnfinishedStatement(
	db: D1Database,
	id: string,
	now: number,
	code: JobErrorCode,
	message: string,
	failable: FailableJobs = "unfinished",
): D1PreparedStatement {
	const condition = typeof failable === "string" ? { sql: FAILABLE[failable], params: [] } : failable;
	return db
		.prepare(
			`UPDATE jobs SET status = 'failed', error_code = ?2, error_message = ?3, completed_at = ?4,
				updated_at = ?4, total_ms = ?4 - created_at, lease_token = NULL, lease_expires_at = NULL
			WHERE id = ?1 AND ${condition.sql}
			RETURNING ${JOB_COLUMNS}`,
		)
		.bind(id, code, message, now, ...condition.params);
}

/** Records a notification job that failed before it could be claimed (dead letters). */
export function insertFailedNotificationStatement(
	db: D1Database,
	id: string,
	n: ObjectVersion,
	now: number,
	code: JobErrorCode,
	message: string,
): D1PreparedStatement {
	return db
		.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, size, status, error_code, error_message,
				attempts, created_at, updated_at, completed_at, total_ms)
			SELECT ?1, 'notification', ?2, ?3, ?4, ?5, 'failed', ?6, ?7, 0, ?8, ?8, ?8, 0
			WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE ${notificationJobOf("?2", "?3", "?4", "''")})
			RETURNING ${JOB_COLUMNS}`,
		)
		.bind(id, n.bucket, n.key, n.etag, n.size, code, message, now);
}

export async function getJobRow(db: D1Database, id: string): Promise<JobRow | null> {
	return db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).bind(id).first().then(parseRow(JobRow));
}

/**
 * A job of an object version that is gone, made with caption options and still waiting for its
 * notification (queued, or its lease over): the notification cannot read those options from the
 * object any more, so it fails this job (`object_not_found`) rather than a job of its own. The
 * oldest; null when there is none.
 */
export async function waitingOptionsJob(db: D1Database, n: ObjectVersion, now: number): Promise<string | null> {
	const row = await db
		.prepare(
			`SELECT id FROM jobs WHERE key = ?2 AND bucket = ?1 AND etag = ?3 AND source = 'notification'
				AND options_key <> '' AND (status = 'queued' OR (status = 'processing' AND lease_expires_at < ?4))
			ORDER BY created_at LIMIT 1`,
		)
		.bind(n.bucket, n.key, n.etag, now)
		.first()
		.then(parseRow(z.object({ id: z.string() })));
	return row?.id ?? null;
}

/**
 * The notification job of an object version made with these options (`optionsKey`, see
 * shared/jobs/options.ts); without them, the version's newest notification job.
 */
export async function getNotificationJobRow(
	db: D1Database,
	n: { bucket: string; key: string; etag: string; optionsKey?: string },
): Promise<JobRow | null> {
	return db
		.prepare(
			`SELECT ${JOB_COLUMNS} FROM jobs WHERE bucket = ?1 AND key = ?2 AND etag = ?3 AND source = 'notification'
				AND (?4 IS NULL OR options_key = ?4)
			ORDER BY created_at DESC LIMIT 1`,
		)
		.bind(n.bucket, n.key, n.etag, n.optionsKey ?? null)
		.first()
		.then(parseRow(JobRow));
}
