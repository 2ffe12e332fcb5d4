-- Fewer D1 rows written per image (docs/performance.md, "D1 rows written per image"; docs/data.md).
--
-- 1. No lease index. `jobs_lease` (status, lease expiry) over the queued and processing jobs cost a
--    row written when a job was made (its queued entry) and another when it was claimed (its
--    processing entry), and only the stalled-job sweep read it. The sweep now walks
--    `jobs_status_created`, which holds every job that is not succeeded and which both writes move
--    anyway: the queued jobs (as before: every queued job's row is read to check its time) and the
--    processing ones (as many as the consumers hold at once, each read to check its lease).
DROP INDEX jobs_lease;

-- 2. A job's caption version is set by the statement that finishes it (shared/jobs/store.ts,
--    `finishStatement`: the object's `captions.versions` + 1, read before this trigger adds the
--    version), not by a second UPDATE of the job from this trigger (a row written per caption).
--    As in 0028_texts_once.sql otherwise: a job made succeeded by a statement that does not set its
--    version (none of the code's paths now; the finishes of code older than this migration) still
--    gets it here.
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
	WHERE id = new.id AND new.completed_at IS NOT NULL AND new.caption_version IS NULL;
	INSERT INTO caption_versions (bucket, key, version, text, source, job_id, model, prompt, etag, created_at)
	SELECT new.bucket, new.key, c.versions, new.caption, 'ai', new.id,
		coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)),
		coalesce(new.prompt, (SELECT t.text FROM job_texts t WHERE t.id = new.prompt_id)), new.etag, new.updated_at
	FROM captions c WHERE c.bucket = new.bucket AND c.key = new.key AND new.completed_at IS NULL;
END;
