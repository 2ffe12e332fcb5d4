-- Objects deleted from the bucket (described in docs/data.md#retention): an R2 DeleteObject or
-- LifecycleDeletion notification about a key that has jobs records when it happened, so that
-- retention deletes the key's jobs, its latest one too, the same delay after the deletion. A key
-- uploaded again after it was deleted has a job newer than `deleted_at` and is kept as any other.
CREATE TABLE deleted_objects (
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	-- The notification's eventTime (Unix ms); the latest deletion wins.
	deleted_at INTEGER NOT NULL,
	PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

-- The record goes with the key's last job: nothing is left behind once retention has deleted them all.
CREATE TRIGGER jobs_deleted_object_gone AFTER DELETE ON jobs
WHEN EXISTS (SELECT 1 FROM deleted_objects WHERE bucket = old.bucket AND key = old.key)
BEGIN
	DELETE FROM deleted_objects WHERE bucket = old.bucket AND key = old.key
		AND NOT EXISTS (SELECT 1 FROM jobs WHERE key = old.key AND bucket = old.bucket);
END;
