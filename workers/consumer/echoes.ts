/**
 * Notifications that must make no job: the echoes of write-back (a sidecar, or the image
 * rewritten with its caption in metadata; both carry `caption-job`) and any sidecar-like object
 * (`.txt`, `.json`) whoever put it there. Each is counted (`write_back_echoes`, `sidecar_objects`
 * in `GET /v1/stats` counters) and acknowledged, with no model call and no webhook.
 */
import { isSidecarLike, WRITE_BACK_MARK } from "../../shared/outputs/sidecar";
import type { ObjectVersion } from "../../shared/queue/caption-jobs";

export type Echo = "write_back_echoes" | "sidecar_objects";

/**
 * Whether a notified version is an echo, from its HEAD (null: gone). A version replaced since
 * the notification is judged by the notification alone; its job fails object_not_found as before.
 */
export function echoOf(version: ObjectVersion, head: R2Object | null): Echo | null {
	const current = head !== null && head.etag === version.etag ? head : null;
	if (current?.customMetadata?.[WRITE_BACK_MARK] !== undefined) return "write_back_echoes";
	if (isSidecarLike(version.key)) return "sidecar_objects";
	return null;
}

/**
 * Whether the notification of a version replaced since is the echo of a metadata write-back: the
 * rewrite keeps the bytes, so its etag is that of the job that wrote it, and once the version is
 * gone its mark can no longer be read. A job of that version writing (or having written) its
 * metadata says so; without this the echo made a job of no options that failed object_not_found.
 * Not while an upload's job of that version without caption options is queued: the notification it
 * waits for fails it now.
 */
export async function isEchoOfGoneVersion(db: D1Database, version: ObjectVersion): Promise<boolean> {
	const row = await db
		.prepare(
			`SELECT 1 AS echo FROM jobs WHERE key = ?2 AND bucket = ?1 AND etag = ?3 AND write_back LIKE 'metadata%'
				AND write_back_status IN ('pending', 'written')
				AND NOT EXISTS (SELECT 1 FROM jobs q WHERE q.key = ?2 AND q.bucket = ?1 AND q.etag = ?3 AND q.status = 'queued'
					AND q.source = 'notification' AND q.options_key = '')
			LIMIT 1`,
		)
		.bind(version.bucket, version.key, version.etag)
		.first();
	return row !== null;
}
