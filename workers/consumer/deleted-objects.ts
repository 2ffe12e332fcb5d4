/**
 * Objects deleted from the bucket: an R2 delete notification about a key that has jobs records
 * when it happened (`deleted_objects`), so that retention lets the key's jobs go, its latest one
 * too, once the deletion is as old as RETENTION_JOBS_DAYS (retention-kinds.ts). A key without jobs
 * (never an image, or already swept) records nothing.
 */

export interface ObjectDeletion {
	bucket: string;
	key: string;
	deletedAt: number;
}

export async function recordObjectDeletion(db: D1Database, deletion: ObjectDeletion): Promise<void> {
	await db
		.prepare(
			`INSERT INTO deleted_objects (bucket, key, deleted_at)
			SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM jobs WHERE key = ?2 AND bucket = ?1)
			ON CONFLICT (bucket, key) DO UPDATE SET deleted_at = max(deleted_at, excluded.deleted_at)`,
		)
		.bind(deletion.bucket, deletion.key, deletion.deletedAt)
		.run();
}
