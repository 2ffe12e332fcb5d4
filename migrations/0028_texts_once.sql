-- Fewer bytes per job, for good (docs/data.md, docs/performance.md#capacity-d1-bytes-per-image).
--
-- 1. The newest-first list index without the job's id: `jobs_created` held the 30-character id in
--    every entry so that jobs of one millisecond came out in id order without a sort. Jobs of one
--    millisecond are few; SQLite now sorts each such tie by id as it walks the index backwards
--    (USE TEMP B-TREE FOR RIGHT PART OF ORDER BY: a page's order and cursor are the same).
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (created_at);
-- The same for a key's jobs: a key has few, and they are sorted when read (its list, the newer job
-- retention looks for, its notification job are all lookups by key), so the entry need not carry
-- the creation time (about 16 bytes a job).
DROP INDEX jobs_key_created;
CREATE INDEX jobs_key_created ON jobs (key);

-- 2. Model names, the default prompt, content types and output kinds are stored once. Every job
--    repeated them (about 85 bytes a job with a 33-character model name and prompt, `image/jpeg`
--    and `caption`). `job_texts` holds each such text once; a job refers to them by `model_id`,
--    `prompt_id`, `content_type_id` and `output_id`, and keeps `model`, `prompt`, `content_type`
--    and `output` NULL, or holds the text itself when it is not a shared one (a custom prompt, a
--    JSON schema, an existing row): shared/jobs/texts.ts reads both. Only the texts the consumer
--    puts here are shared, so a prompt used once is not stored twice. Rows are never deleted (a job
--    may refer to one); the table stays as small as that set of texts. Existing jobs keep their
--    texts (no rewrite of the jobs table).
CREATE TABLE job_texts (
	id INTEGER PRIMARY KEY,
	text TEXT NOT NULL UNIQUE
);
ALTER TABLE jobs ADD COLUMN prompt_id INTEGER;
ALTER TABLE jobs ADD COLUMN model_id INTEGER;
ALTER TABLE jobs ADD COLUMN content_type_id INTEGER;
ALTER TABLE jobs ADD COLUMN output_id INTEGER;

-- The triggers that copy a job's model or prompt read either form (as in 0024 and 0027 otherwise).
DROP TRIGGER jobs_batch_models;
CREATE TRIGGER jobs_batch_models AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND (new.model IS NOT NULL OR new.model_id IS NOT NULL) AND new.status = 'succeeded'
	AND old.status <> 'succeeded'
BEGIN
	UPDATE batches SET models = json_set(models,
		'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"',
		coalesce(json_extract(models,
			'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"'), 0) + 1)
	WHERE id = new.batch_id;
END;

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
	SELECT new.bucket, new.key, c.versions, new.caption, 'ai', new.id,
		coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)),
		coalesce(new.prompt, (SELECT t.text FROM job_texts t WHERE t.id = new.prompt_id)), new.etag, new.updated_at
	FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key AND new.completed_at IS NULL;
END;

DROP TRIGGER jobs_caption_version_keep;
CREATE TRIGGER jobs_caption_version_keep AFTER DELETE ON jobs
WHEN old.caption_version IS NOT NULL
BEGIN
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	VALUES (old.bucket, old.key, old.caption_version, old.caption, 'ai', old.id,
		coalesce(old.model, (SELECT t.text FROM job_texts t WHERE t.id = old.model_id)),
		coalesce(old.prompt, (SELECT t.text FROM job_texts t WHERE t.id = old.prompt_id)), old.etag, old.completed_at);
END;

DROP TRIGGER jobs_caption_version_change;
CREATE TRIGGER jobs_caption_version_change AFTER UPDATE OF caption, model, prompt, model_id, prompt_id, etag, bucket, key,
	completed_at ON jobs
WHEN old.caption_version IS NOT NULL AND (new.caption IS NOT old.caption
	OR coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id))
		IS NOT coalesce(old.model, (SELECT t.text FROM job_texts t WHERE t.id = old.model_id))
	OR coalesce(new.prompt, (SELECT t.text FROM job_texts t WHERE t.id = new.prompt_id))
		IS NOT coalesce(old.prompt, (SELECT t.text FROM job_texts t WHERE t.id = old.prompt_id))
	OR new.etag IS NOT old.etag OR new.bucket IS NOT old.bucket OR new.key IS NOT old.key
	OR new.completed_at IS NOT old.completed_at)
BEGIN
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	VALUES (old.bucket, old.key, old.caption_version, old.caption, 'ai', old.id,
		coalesce(old.model, (SELECT t.text FROM job_texts t WHERE t.id = old.model_id)),
		coalesce(old.prompt, (SELECT t.text FROM job_texts t WHERE t.id = old.prompt_id)), old.etag, old.completed_at);
	UPDATE jobs SET caption_version = NULL WHERE id = new.id;
END;

-- 3. A job's event is keyed by its job (shared/webhooks/job-event.ts): its id is the job's id with
--    the `evt_` prefix, so the primary key finds the event of a job and the job of an event, and the
--    row holds no `job_id` and no unique index of it (about 75 bytes an image while its webhook rows
--    are kept). Events recorded before keep their ids and their `job_id` (a partial unique index:
--    still one event per job). SQLite cannot change a CHECK in place, so the outbox is rebuilt as in
--    0022, keeping every row's rowid (the event stream's positions); the copy is one statement over
--    the rows retention keeps (RETENTION_WEBHOOKS_DAYS of events, 7 by default).
CREATE TABLE webhook_events_new (
	id TEXT PRIMARY KEY,
	-- The job of an event recorded before 0028; NULL for one since (its job is its id's).
	job_id TEXT,
	batch_id TEXT,
	type TEXT NOT NULL CHECK (type IN ('job.succeeded', 'job.failed', 'batch.completed', 'batch.cancelled', 'batch.progress',
		'caption.updated')),
	payload TEXT,
	created_at INTEGER NOT NULL,
	dispatched_at INTEGER,
	-- A `caption.updated` event is about an object: no job, no batch, its payload stored. A job's
	-- event has no batch; a batch's has its batch and no job.
	CHECK (CASE WHEN type = 'caption.updated' THEN job_id IS NULL AND batch_id IS NULL AND payload IS NOT NULL
		WHEN type IN ('job.succeeded', 'job.failed') THEN batch_id IS NULL
		ELSE job_id IS NULL AND batch_id IS NOT NULL END)
);
INSERT INTO webhook_events_new (rowid, id, job_id, batch_id, type, payload, created_at, dispatched_at)
SELECT rowid, id, job_id, batch_id, type, payload, created_at, dispatched_at FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE UNIQUE INDEX webhook_events_job ON webhook_events (job_id) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX webhook_events_batch_final ON webhook_events (batch_id)
WHERE type IN ('batch.completed', 'batch.cancelled');
CREATE INDEX webhook_events_batch ON webhook_events (batch_id, created_at) WHERE batch_id IS NOT NULL;
CREATE INDEX webhook_events_undispatched ON webhook_events (created_at) WHERE dispatched_at IS NULL;
