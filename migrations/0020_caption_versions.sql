-- Captions as a managed asset (described in docs/data.md#captions): every succeeded job adds a
-- version of its object's caption, a person may add one (source 'human'), and `captions` points at
-- each object's current version. Versions stay while the object does: retention archives and
-- deletes jobs, never these rows (a version whose job was archived keeps its job_id).

CREATE TABLE caption_versions (
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	-- 1, 2, … per object, in the order the versions were made.
	version INTEGER NOT NULL,
	text TEXT NOT NULL,
	source TEXT NOT NULL CHECK (source IN ('ai', 'human')),
	-- The job that made it (NULL for a human version); the model and prompt it ran with.
	job_id TEXT,
	model TEXT,
	prompt TEXT,
	-- The object version it describes (a human version: the object's ETag when it was written).
	etag TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (bucket, key, version)
) WITHOUT ROWID;

-- One row per object that has a caption: which version is current, and how many there are. Key
-- order is the primary key's, so `GET /v1/captions` and the captions export walk it a page at a time.
CREATE TABLE captions (
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	current INTEGER NOT NULL,
	versions INTEGER NOT NULL,
	-- When the current version became current.
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (bucket, key)
) WITHOUT ROWID;

-- Batches gain the status 'planned' (a dry run: listed and counted, no job made, until started),
-- the re-caption rules (JSON: unless_model, older_than, overwrite_human; whether their jobs may
-- replace a human caption), and a dry run's count of the jobs it would make. SQLite cannot change a
-- CHECK in place: rebuilt with the same columns, then these.
CREATE TABLE batches_new (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN ('planned', 'listing', 'running', 'completed', 'cancelled')),
	bucket TEXT NOT NULL,
	prefix TEXT,
	key_count INTEGER,
	key_prefix TEXT NOT NULL,
	prompt TEXT,
	max_tokens INTEGER,
	callback_url TEXT,
	metadata TEXT NOT NULL,
	skip_captioned INTEGER NOT NULL CHECK (skip_captioned IN (0, 1)),
	key_id TEXT,
	pages_listed INTEGER NOT NULL DEFAULT 0,
	list_cursor TEXT,
	unsent_page INTEGER,
	unsent TEXT,
	total INTEGER NOT NULL DEFAULT 0,
	queued INTEGER NOT NULL DEFAULT 0,
	processing INTEGER NOT NULL DEFAULT 0,
	succeeded INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0,
	cancelled INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	listed_at INTEGER,
	completed_at INTEGER,
	missing INTEGER NOT NULL DEFAULT 0,
	recaption TEXT,
	overwrite_human INTEGER NOT NULL DEFAULT 0 CHECK (overwrite_human IN (0, 1)),
	-- 1 while the batch plans (a dry run's listing makes no job); 0 once started.
	dry_run INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
	-- A dry run's listing: objects that would get a job (the estimate's model calls).
	planned INTEGER NOT NULL DEFAULT 0,
	CHECK ((prefix IS NULL) <> (key_count IS NULL))
);
INSERT INTO batches_new (id, status, bucket, prefix, key_count, key_prefix, prompt, max_tokens, callback_url, metadata,
	skip_captioned, key_id, pages_listed, list_cursor, unsent_page, unsent, total, queued, processing, succeeded, failed,
	cancelled, skipped, created_at, updated_at, listed_at, completed_at, missing)
SELECT id, status, bucket, prefix, key_count, key_prefix, prompt, max_tokens, callback_url, metadata,
	skip_captioned, key_id, pages_listed, list_cursor, unsent_page, unsent, total, queued, processing, succeeded, failed,
	cancelled, skipped, created_at, updated_at, listed_at, completed_at, missing
FROM batches;
-- A trigger that names a missing table fails the rename: the batch counts' trigger is made again below.
DROP TRIGGER jobs_batch_counts;
DROP TABLE batches;
ALTER TABLE batches_new RENAME TO batches;
-- The indexes the table had (as 0019_smaller_rows.sql left them: stored oldest first, and no
-- batches_active, which no query reads).
CREATE INDEX batches_created ON batches (created_at, id);
CREATE INDEX batches_status_created ON batches (status, created_at, id);
CREATE INDEX batches_unfinished ON batches (updated_at) WHERE status = 'listing' OR unsent IS NOT NULL;
CREATE INDEX batches_key_open ON batches (key_id) WHERE key_id IS NOT NULL AND status IN ('listing', 'running');

CREATE TRIGGER jobs_batch_counts AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND old.status <> new.status AND new.status <> 'cancelled'
BEGIN
	UPDATE batches SET
		queued = queued + (new.status = 'queued') - (old.status = 'queued'),
		processing = processing + (new.status = 'processing') - (old.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded') - (old.status = 'succeeded'),
		failed = failed + (new.status = 'failed') - (old.status = 'failed')
	WHERE id = new.batch_id;
END;

-- A job's caption becomes a version in the statement that makes the job succeed, whichever code
-- path finishes it. The new version is current unless the current one is human and the job's
-- batch was not asked to overwrite human captions.
CREATE TRIGGER jobs_caption_version AFTER UPDATE OF status ON jobs
WHEN new.status = 'succeeded' AND old.status <> 'succeeded' AND new.caption IS NOT NULL
BEGIN
	INSERT INTO captions (bucket, key, current, versions, updated_at)
	VALUES (new.bucket, new.key, 1, 1, coalesce(new.completed_at, new.updated_at))
	ON CONFLICT (bucket, key) DO UPDATE SET
		versions = captions.versions + 1,
		current = CASE WHEN (SELECT v.source = 'human' FROM caption_versions v
			WHERE v.bucket = captions.bucket AND v.key = captions.key AND v.version = captions.current)
			AND NOT coalesce((SELECT b.overwrite_human FROM batches b WHERE b.id = new.batch_id), 0) THEN captions.current ELSE captions.versions + 1 END,
		updated_at = CASE WHEN (SELECT v.source = 'human' FROM caption_versions v
			WHERE v.bucket = captions.bucket AND v.key = captions.key AND v.version = captions.current)
			AND NOT coalesce((SELECT b.overwrite_human FROM batches b WHERE b.id = new.batch_id), 0) THEN captions.updated_at ELSE excluded.updated_at END;
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	SELECT new.bucket, new.key, c.versions, new.caption, 'ai', new.id, new.model, new.prompt, new.etag,
		coalesce(new.completed_at, new.updated_at)
	FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key;
END;

-- Captions of the jobs that succeeded before versions existed: one version per succeeded job, in
-- the order they finished, the newest current.
INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
SELECT bucket, key,
	row_number() OVER (PARTITION BY bucket, key ORDER BY coalesce(completed_at, updated_at), id),
	caption, 'ai', id, model, prompt, etag, coalesce(completed_at, updated_at)
FROM jobs WHERE status = 'succeeded' AND caption IS NOT NULL;
INSERT INTO captions (bucket, key, current, versions, updated_at)
SELECT bucket, key, max(version), max(version), max(created_at) FROM caption_versions GROUP BY bucket, key;

-- `caption.updated` events (a human version was written) carry their payload (the caption at that
-- moment, which later versions must not change) in webhook_events.payload, and have neither a job
-- nor a batch. The outbox's CHECKs that allow them are made in 0022_live_results.sql, which
-- rebuilds webhook_events once for these and for `batch.progress`.

-- A re-caption batch skips objects whose current caption it leaves alone: a human one has no job,
-- so a skip's job is optional (NULL: the caption is a person's). Rebuilt: SQLite cannot drop NOT NULL.
CREATE TABLE batch_skips_new (
	batch_id TEXT NOT NULL,
	key TEXT NOT NULL,
	job_id TEXT,
	PRIMARY KEY (batch_id, key)
) WITHOUT ROWID;
INSERT INTO batch_skips_new (batch_id, key, job_id) SELECT batch_id, key, job_id FROM batch_skips;
DROP TABLE batch_skips;
ALTER TABLE batch_skips_new RENAME TO batch_skips;
