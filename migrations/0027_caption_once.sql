-- Fewer bytes per object and per image (docs/data.md, docs/performance.md#capacity-d1-bytes-per-image).
--
-- 1. A job's caption is kept once. An `ai` version whose job still exists stores no copy of what
--    the job row holds (its text, model, prompt and ETag: NULL here, read from the job by its id);
--    when the job is deleted (retention, a deleted object), the trigger `jobs_caption_version_keep`
--    copies them into the version in the same statement, so a version outlives its job as before.
--    A human version stores them as before. SQLite cannot drop NOT NULL: the table is rebuilt.
DROP TRIGGER jobs_caption_version;
CREATE TABLE caption_versions_new (
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	version INTEGER NOT NULL,
	-- NULL (with model, prompt and etag) while the `ai` version's job exists: the job row holds them.
	text TEXT,
	source TEXT NOT NULL CHECK (source IN ('ai', 'human')),
	job_id TEXT,
	model TEXT,
	prompt TEXT,
	etag TEXT,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (bucket, key, version),
	CHECK ((text IS NULL) = (etag IS NULL) AND (text IS NOT NULL OR (source = 'ai' AND job_id IS NOT NULL)))
) WITHOUT ROWID;
-- An existing `ai` version drops its copy only where its job holds exactly the same values.
INSERT INTO caption_versions_new (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
SELECT v.bucket, v.key, v.version,
	CASE WHEN j.id IS NULL THEN v.text END, v.source, v.job_id,
	CASE WHEN j.id IS NULL THEN v.model END, CASE WHEN j.id IS NULL THEN v.prompt END,
	CASE WHEN j.id IS NULL THEN v.etag END, v.created_at
FROM caption_versions v LEFT JOIN jobs j ON v.source = 'ai' AND j.id = v.job_id AND j.bucket = v.bucket
	AND j.key = v.key AND j.caption IS v.text AND j.model IS v.model AND j.prompt IS v.prompt AND j.etag IS v.etag;
DROP TABLE caption_versions;
ALTER TABLE caption_versions_new RENAME TO caption_versions;

-- As in 0020_caption_versions.sql, but the version holds no copy of the job's columns.
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
	INSERT INTO caption_versions (bucket, key, version, source, job_id, created_at)
	SELECT new.bucket, new.key, c.versions, 'ai', new.id, coalesce(new.completed_at, new.updated_at)
	FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key;
END;

-- A deleted job leaves its values in its versions (an object has few: a primary-key range), and so
-- does a job whose values change after it made a version (no code path changes a succeeded job's;
-- the version must not change if one ever does).
CREATE TRIGGER jobs_caption_version_keep AFTER DELETE ON jobs
WHEN old.caption IS NOT NULL
BEGIN
	UPDATE caption_versions SET text = old.caption, model = old.model, prompt = old.prompt, etag = old.etag
	WHERE bucket = old.bucket AND key = old.key AND job_id = old.id AND text IS NULL;
END;
CREATE TRIGGER jobs_caption_version_change AFTER UPDATE OF caption, model, prompt, etag, bucket, key ON jobs
WHEN old.caption IS NOT NULL AND (new.caption IS NOT old.caption OR new.model IS NOT old.model
	OR new.prompt IS NOT old.prompt OR new.etag IS NOT old.etag OR new.bucket IS NOT old.bucket OR new.key IS NOT old.key)
BEGIN
	UPDATE caption_versions SET text = old.caption, model = old.model, prompt = old.prompt, etag = old.etag
	WHERE bucket = old.bucket AND key = old.key AND job_id = old.id AND text IS NULL;
END;

-- 2. One notification job per object version and caption options, without the index
--    jobs_notification_once (bucket, key, ETag, options key: about 100 bytes a job). A key has few
--    jobs: the jobs that insert a notification job find an existing one through jobs_key_created
--    in the same statement (INSERT … WHERE NOT EXISTS; D1 runs one statement at a time, so two
--    duplicate notifications cannot both insert), and this trigger refuses any other insert of a
--    second one, as the unique index did.
DROP INDEX jobs_notification_once;
CREATE TRIGGER jobs_notification_once BEFORE INSERT ON jobs
WHEN new.source = 'notification' AND EXISTS (SELECT 1 FROM jobs j WHERE j.key = new.key AND j.bucket = new.bucket
	AND j.etag = new.etag AND j.source = 'notification' AND j.options_key = new.options_key)
BEGIN
	SELECT RAISE(ABORT, 'UNIQUE constraint failed: jobs_notification_once');
END;

-- 3. A delivery's first attempt is kept in its row (shared/webhooks/attempts.ts): nearly every
--    delivery succeeds at its first attempt, and its `webhook_attempts` row cost about 57 bytes an
--    image. Later attempts stay rows of `webhook_attempts`. Existing first attempts move over.
ALTER TABLE webhook_deliveries ADD COLUMN attempt1_started_at INTEGER;
ALTER TABLE webhook_deliveries ADD COLUMN attempt1_status_code INTEGER;
ALTER TABLE webhook_deliveries ADD COLUMN attempt1_duration_ms INTEGER;
ALTER TABLE webhook_deliveries ADD COLUMN attempt1_error TEXT;
UPDATE webhook_deliveries SET
	attempt1_started_at = (SELECT a.started_at FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = 1),
	attempt1_status_code = (SELECT a.status_code FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = 1),
	attempt1_duration_ms = (SELECT a.duration_ms FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = 1),
	attempt1_error = (SELECT a.error FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = 1)
WHERE EXISTS (SELECT 1 FROM webhook_attempts a WHERE a.delivery_id = webhook_deliveries.id AND a.attempt = 1);
DELETE FROM webhook_attempts WHERE attempt = 1 AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.id = delivery_id);

-- 4. One delivery per event and target without the subscription's id in every index entry:
--    `webhook_deliveries_once` is on the event alone (an event has a handful of deliveries); the
--    inserts check for the target's delivery in the same statement (shared/webhooks/delivery-once.ts)
--    and this trigger refuses any other insert of a second one, as the unique index did.
DROP INDEX webhook_deliveries_once;
CREATE INDEX webhook_deliveries_once ON webhook_deliveries (event_id);
CREATE TRIGGER webhook_deliveries_one_per_target BEFORE INSERT ON webhook_deliveries
WHEN EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = new.event_id
	AND coalesce(d.subscription_id, '') = coalesce(new.subscription_id, ''))
BEGIN
	SELECT RAISE(ABORT, 'UNIQUE constraint failed: webhook_deliveries_once');
END;
