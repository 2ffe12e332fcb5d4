/**
 * An object version written again after its notification job failed `object_not_found` (the
 * version was replaced or deleted before the job ran: A, then B over it, then A again). The one
 * notification job of that version and options is terminal, so the new write's notification would
 * be taken for a duplicate and the object never captioned: the upload (workers/status/jobs/create.ts)
 * or the notification (workers/consumer/caption-job.ts) that finds the version there again makes a
 * new job of it instead, `source` 'api', claimed by id, unless one made since that failure still
 * stands for it. Each insert says so in its own statement (D1 runs one at a time), so writes and
 * duplicate notifications at once make one.
 */
import { z } from "zod";
import { parseRow } from "../d1-rows";
import { notificationJobOf } from "./notification-once";
import { jobText } from "./text-sql";

/** `FROM` the version's notification job (alias `f`) when it failed object_not_found. */
export const goneNotificationJob = (bucket: string, key: string, etag: string, optionsKey: string): string =>
	`FROM jobs f WHERE ${notificationJobOf(bucket, key, etag, optionsKey)}
		AND f.status = 'failed' AND f.error_code = 'object_not_found'`;

/** A job (alias `r`) made since `f` failed, for its version and options. */
export const madeSince = `r.key = f.key AND r.bucket = f.bucket AND r.etag = f.etag AND r.source = 'api'
	AND r.options_key = f.options_key AND r.created_at >= f.created_at`;

/** No job made since `f` failed stands for it (one that failed object_not_found too does not). */
export const noneStandsSince = `NOT EXISTS (SELECT 1 FROM jobs r WHERE ${madeSince}
	AND NOT (r.status = 'failed' AND r.error_code = 'object_not_found'))`;

/**
 * The new job of a notified version found in the bucket again, with the options the failed job
 * had (its own row's, its key's): its id, or null when the version's notification job did not fail
 * object_not_found or a job made since stands for it.
 */
export async function reopenWrittenVersion(
	db: D1Database,
	version: { bucket: string; key: string; etag: string },
	optionsKey: string,
	id: string,
	now: number,
): Promise<string | null> {
	const row = await db
		.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, size, content_type, prompt, max_tokens, callback_url,
				status, attempts, created_at, updated_at, key_id, output, language, write_back, options_key)
			SELECT ?5, 'api', f.bucket, f.key, f.etag, f.size, ${jobText("content_type", "f.")}, ${jobText("prompt", "f.")},
				f.max_tokens, f.callback_url, 'queued', 0, ?6, ?6, f.key_id, ${jobText("output", "f.")}, f.language,
				f.write_back, f.options_key
			${goneNotificationJob("?1", "?2", "?3", "?4")} AND ${noneStandsSince}
			RETURNING id`,
		)
		.bind(version.bucket, version.key, version.etag, optionsKey, id, now)
		.first()
		.then(parseRow(z.object({ id: z.string() })));
	return row?.id ?? null;
}
