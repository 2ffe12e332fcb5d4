-- Fewer bytes per object and per image (docs/data.md, docs/performance.md#capacity-d1-bytes-per-image).
--
-- 1. A job's caption is kept once. While its job exists, an `ai` version is held by the job row
--    itself: `jobs.caption_version` is its version number, and its text, model, prompt, ETag and
--    time are the job's `caption`, `model`, `prompt`, `etag` and `completed_at`
--    (shared/captions/version-sql.ts reads both kinds). The `caption_versions` row (about 110 bytes
--    an object besides the text) is written only when the job is deleted (retention, a deleted
--    object) or its values change, by the triggers below in the same statement, so a version
--    outlives its job as before. Human versions are rows of `caption_versions`, as before.
ALTER TABLE jobs ADD COLUMN caption_version INTEGER;

-- An existing `ai` version becomes its job's where the job holds exactly its values.
UPDATE jobs SET caption_version = (SELECT max(v.version) FROM caption_versions v
	WHERE v.bucket = jobs.bucket AND v.key = jobs.key AND v.job_id = jobs.id AND v.source = 'ai'
		AND v.text IS jobs.caption AND v.model IS jobs.model AND v.prompt IS jobs.prompt AND v.etag IS jobs.etag
		AND v.created_at IS jobs.completed_at)
WHERE caption IS NOT NULL AND completed_at IS NOT NULL;
DELETE FROM caption_versions WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = caption_versions.job_id
	AND j.bucket = caption_versions.bucket AND j.key = caption_versions.key AND j.caption_version = caption_versions.version);

-- As in 0020_caption_versions.sql, but the new version is the job's own (a row of
-- caption_versions only for a job without a completion time, whose time could not be read back).
DROP TRIGGER jobs_caption_version;
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
	UPDATE jobs SET caption_version = (SELECT c.versions FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key)
	WHERE id = new.id AND new.completed_at IS NOT NULL;
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	SELECT new.bucket, new.key, c.versions, new.caption, 'ai', new.id, new.model, new.prompt, new.etag, new.updated_at
	FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key AND new.completed_at IS NULL;
END;

-- A deleted job leaves its version as a row; so does a job whose values change while it holds
-- one (no code path changes a succeeded job's; its version must not change if one ever does).
CREATE TRIGGER jobs_caption_version_keep AFTER DELETE ON jobs
WHEN old.caption_version IS NOT NULL
BEGIN
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	VALUES (old.bucket, old.key, old.caption_version, old.caption, 'ai', old.id, old.model, old.prompt, old.etag,
		old.completed_at);
END;
CREATE TRIGGER jobs_caption_version_change AFTER UPDATE OF caption, model, prompt, etag, bucket, key, completed_at ON jobs
WHEN old.caption_version IS NOT NULL AND (new.caption IS NOT old.caption OR new.model IS NOT old.model
	OR new.prompt IS NOT old.prompt OR new.etag IS NOT old.etag OR new.bucket IS NOT old.bucket OR new.key IS NOT old.key
	OR new.completed_at IS NOT old.completed_at)
BEGIN
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	VALUES (old.bucket, old.key, old.caption_version, old.caption, 'ai', old.id, old.model, old.prompt, old.etag,
		old.completed_at);
	UPDATE jobs SET caption_version = NULL WHERE id = new.id;
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
