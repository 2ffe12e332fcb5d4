/**
 * An object version written again (A, then B over it, then A again: the same bytes have the same
 * etag). The one notification job of that version and options was made by the first write, so the
 * new write's notification would be taken for a duplicate and the upload would answer that job,
 * though the object may need a caption of A again: that job failed `object_not_found` (B replaced A
 * before it ran), or it was made before a caption of other bytes was made current (B's), so the
 * key's current caption no longer describes the object. The upload (workers/status/jobs/create.ts)
 * or the notification (workers/consumer/caption-job.ts) that finds the version there again makes a
 * new job of it then, `source` 'api', claimed by id (one model call, webhooks and write-back as for
 * any job); a human current caption stays current (docs/api.md#captions), so it makes none for that.
 * Each insert says so in its own statement (D1 runs one at a time), so writes and duplicate
 * notifications at once make one.
 */
import { z } from "zod";
import { CURRENT_VERSION_JOINS } from "../captions/version-sql";
import { parseRow } from "../d1-rows";
import { notificationJobOf } from "./notification-once";
import { jobText } from "./text-sql";

/** `FROM` the version's notification job (alias `f`). */
export const versionNotificationJob = (bucket: string, key: string, etag: string, optionsKey: string): string =>
	`FROM jobs f WHERE ${notificationJobOf(bucket, key, etag, optionsKey)}`;

/** A job (alias `r`) made in `f`'s place (through its key: jobs_key_created). */
const madeInItsPlace = "r.key = f.key AND r.bucket = f.bucket AND r.replaces = f.id";

/** The id of the job that stands for `f`'s version now: the newest made in its place, else `f`. */
export const standingJobId = `coalesce((SELECT r.id FROM jobs r WHERE ${madeInItsPlace}
	ORDER BY r.created_at DESC, r.id DESC LIMIT 1), f.id)`;

/**
 * The version of `f`, found in the bucket, needs a new job: the job that stands for it (alias `s`)
 * failed object_not_found, or it was made before the key's current caption and has finished
 * (succeeded, or failed otherwise), and that caption is an `ai` one of other bytes. A job in
 * flight, or made since that caption (a failed one is not tried again for every duplicate), stands.
 */
export const needsNewJob = `EXISTS (SELECT 1 FROM jobs s WHERE s.id = ${standingJobId} AND (
	(s.status = 'failed' AND s.error_code = 'object_not_found')
	OR (s.status IN ('succeeded', 'failed') AND EXISTS (SELECT 1 FROM captions c ${CURRENT_VERSION_JOINS}
		WHERE c.bucket = f.bucket AND c.key = f.key AND c.updated_at > s.created_at
			AND coalesce(v.source, 'ai') = 'ai' AND coalesce(v.etag, j.etag) IS NOT f.etag))))`;

/**
 * The new job of a notified version found in the bucket again: its id, or null when the job that
 * stands for the version still does (needsNewJob). Its options are the object's (the version's
 * metadata, which its options key is the digest of), a preset's or the defaults, as its
 * notification job's would be: not that job's row, which holds the options it ran with once it ran.
 * Its callbacks are signed as that job's (its key).
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
				status, attempts, created_at, updated_at, key_id, output, language, write_back, options_key, replaces)
			SELECT ?5, 'api', f.bucket, f.key, f.etag, f.size, ${jobText("content_type", "f.")}, NULL, NULL, NULL,
				'queued', 0, ?6, ?6, f.key_id, NULL, NULL, NULL, f.options_key, f.id
			${versionNotificationJob("?1", "?2", "?3", "?4")} AND ${needsNewJob}
			RETURNING id`,
		)
		.bind(version.bucket, version.key, version.etag, optionsKey, id, now)
		.first()
		.then(parseRow(z.object({ id: z.string() })));
	return row?.id ?? null;
}
