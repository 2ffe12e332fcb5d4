/**
 * Creating queued jobs from the HTTP API. An upload makes the notification job of the object
 * version and its caption options (the same (bucket, key, etag, options_key) row the consumer's
 * claim finds, so the notification that follows does not make a second one); `POST /v1/jobs`
 * makes a separate 'api' job every time. Both record the API key that asked (`key_id`, counted by
 * the in-flight cap).
 */
import { z } from "zod";
import { batchRows, parseRow } from "../../../shared/d1-rows";
import { newJobId } from "../../../shared/ids";
import { notificationJobOf } from "../../../shared/jobs/notification-once";
import { JobRow } from "../../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../../shared/jobs/texts";
import { needsNewJob, standingJobId, versionNotificationJob } from "../../../shared/jobs/written-again";
import type { OutputColumns } from "../output-options";

export interface QueuedJobInput {
	bucket: string;
	key: string;
	etag: string;
	size: number | null;
	contentType: string | null;
	prompt: string | null;
	maxTokens: number | null;
	callbackUrl: string | null;
	/** The API key that asked; null for the admin token. */
	keyId: string | null;
	/** The explicit output options (text forms); absent: none given. */
	outputs?: OutputColumns;
}

export interface UploadJobInput extends QueuedJobInput {
	/** `optionsKey` of the custom metadata the object was stored with (shared/jobs/options.ts). */
	optionsKey: string;
}

const INSERT_COLUMNS = `(id, source, bucket, key, etag, size, content_type, prompt, max_tokens, callback_url,
	status, attempts, created_at, updated_at, key_id, output, language, write_back, options_key, replaces)`;

const bindings = (id: string, job: QueuedJobInput, now: number) => [
	id,
	job.bucket,
	job.key,
	job.etag,
	job.size,
	job.contentType,
	job.prompt,
	job.maxTokens,
	job.callbackUrl,
	now,
	job.keyId,
	job.outputs?.output ?? null,
	job.outputs?.language ?? null,
	job.outputs?.writeBack ?? null,
];

const JobId = z.object({ id: z.string() });

/**
 * The notification job of an uploaded object version: created queued, or, if the consumer (or an
 * identical earlier upload) got there first, the row that already exists. A row the consumer made
 * from the R2 notification before this insert learns the uploading key (its callbacks are signed
 * with that key's secret, and it counts towards the key's in-flight cap).
 *
 * The bytes of an earlier version written again (A, B over it, A again) may need a caption again:
 * when the version's notification job failed `object_not_found` (B replaced A before it ran), or
 * was made before the key's current caption, an `ai` caption of other bytes (B's), and finished, this
 * upload makes a new job of its options (shared/jobs/written-again.ts) and answers it. Otherwise it
 * answers the job that stands for the version: the newest made in its place since, else that job.
 *
 * `unclaimable`: the jobs to send by id. The same bytes uploaded with other caption headers keep
 * their etag, and every notification of the version resolves to the options of the upload written
 * last (the object's metadata), so no notification will claim the jobs of the others: the
 * version's other queued notification jobs, and this one too whenever the version has a
 * notification job of other options, since the order of the uploads' R2 writes and of their D1
 * transactions need not be the same (an upload written first to R2 but last to D1 would otherwise
 * leave its own job to the stalled-job sweep). A message too many is a duplicate, acknowledged.
 * Also a new job made for a version written again.
 */
export async function ensureNotificationJob(
	db: D1Database,
	job: UploadJobInput,
	now = Date.now(),
): Promise<{ row: JobRow; unclaimable: string[] }> {
	const version = notificationJobOf("?2", "?3", "?4", "?15");
	const params = [...bindings(newJobId(now), job, now), job.optionsKey];
	// ?16: the id of a job made for a version written again.
	const insertParams = [...params, newJobId(now)];
	// The version's notification job (`f`).
	const notified = versionNotificationJob("?2", "?3", "?4", "?15");
	// One transaction: the version's job (learning the key, if it has none yet: a job that already
	// has one, or an upload without a key, is not written again) if it exists, else a new one; a new
	// job if the version written again needs one; the job answered; the jobs to send by id.
	const [, inserted, answered, waiting] = await db.batch([
		db
			.prepare(
				`UPDATE jobs SET key_id = ?11 WHERE id = (SELECT id FROM jobs WHERE ${version}) AND key_id IS NULL
					AND ?11 IS NOT NULL`,
			)
			.bind(...params),
		db
			.prepare(
				`INSERT INTO jobs ${INSERT_COLUMNS}
				SELECT ?1, 'notification', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', 0, ?10, ?10, ?11, ?12, ?13, ?14, ?15, NULL
				WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE ${version})
				UNION ALL
				SELECT ?16, 'api', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', 0, ?10, ?10, ?11, ?12, ?13, ?14, ?15, f.id ${notified}
					AND ${needsNewJob}
				RETURNING ${JOB_COLUMNS}`,
			)
			.bind(...insertParams),
		db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = (SELECT ${standingJobId} ${notified})`).bind(...params),
		db
			.prepare(
				`SELECT id FROM jobs WHERE key = ?3 AND bucket = ?2 AND etag = ?4 AND source = 'notification'
					AND status = 'queued' AND attempts = 0
					AND (options_key <> ?15 OR EXISTS (SELECT 1 FROM jobs o WHERE o.key = ?3 AND o.bucket = ?2 AND o.etag = ?4
						AND o.source = 'notification' AND o.options_key <> ?15))`,
			)
			.bind(...params),
	]);
	const [row] = batchRows(answered, JobRow);
	if (!row) throw new Error(`notification job for ${job.key} neither inserted nor found`);
	const replacements = batchRows(inserted, JobRow).filter((r) => r.source === "api");
	return { row, unclaimable: [...batchRows(waiting, JobId).map((j) => j.id), ...replacements.map((r) => r.id)] };
}

/** A new API-requested job for an object version, whatever jobs that version already has. */
export async function insertApiJob(db: D1Database, job: QueuedJobInput, now = Date.now()): Promise<JobRow> {
	const row = await db
		.prepare(
			`INSERT INTO jobs ${INSERT_COLUMNS}
			VALUES (?1, 'api', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', 0, ?10, ?10, ?11, ?12, ?13, ?14, '', NULL)
			RETURNING ${JOB_COLUMNS}`,
		)
		.bind(...bindings(newJobId(now), job, now))
		.first()
		.then(parseRow(JobRow));
	if (!row) throw new Error(`api job for ${job.key} was not inserted`);
	return row;
}
