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

-- 3. A batch's counts, token sums and models moved once per consumer write instead of once per job,
--    like the statistics counters since 0029_batched_stats.sql: the consumer's claims and finishes
--    of a queue batch add their changes to each batch row in the same transaction
--    (shared/jobs/batched-counts.ts), and say so in the row of `stats_deferred` they hold
--    (`batches` = 1); these triggers then leave those changes to them. Code older than this
--    migration holds that row without `batches`, and the triggers count its changes as before;
--    newer code against the older schema fails its transaction and writes each job alone, counted
--    here (so either deploy order keeps the counts exact). As in 0025_usage.sql and 0028 otherwise.
ALTER TABLE stats_deferred ADD COLUMN batches INTEGER;

DROP TRIGGER jobs_batch_counts;
CREATE TRIGGER jobs_batch_counts AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND old.status <> new.status AND new.status <> 'cancelled'
	AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
BEGIN
	UPDATE batches SET
		queued = queued + (new.status = 'queued') - (old.status = 'queued'),
		processing = processing + (new.status = 'processing') - (old.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded') - (old.status = 'succeeded'),
		failed = failed + (new.status = 'failed') - (old.status = 'failed'),
		input_tokens = input_tokens + coalesce(new.input_tokens, 0) - coalesce(old.input_tokens, 0),
		output_tokens = output_tokens + coalesce(new.output_tokens, 0) - coalesce(old.output_tokens, 0),
		jobs_with_usage = jobs_with_usage + (new.input_tokens IS NOT NULL) - (old.input_tokens IS NOT NULL)
	WHERE id = new.batch_id;
END;

DROP TRIGGER jobs_batch_models;
CREATE TRIGGER jobs_batch_models AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND (new.model IS NOT NULL OR new.model_id IS NOT NULL) AND new.status = 'succeeded'
	AND old.status <> 'succeeded' AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
BEGIN
	UPDATE batches SET models = json_set(models,
		'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"',
		coalesce(json_extract(models,
			'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"'), 0) + 1)
	WHERE id = new.batch_id;
END;

-- 4. A batch's completion numbers given the same way: the consumer's finishes of a queue batch add
--    their number to the batch's `finished_seq` in that one UPDATE of each batch row, and each
--    finish sets its job's `batch_seq` in its own UPDATE (shared/jobs/store.ts), instead of this
--    trigger's UPDATE of the batch and second UPDATE of the job (two rows written per batch job).
--    Every other writer (cancels, sweeps, dead letters, older code) is numbered here, as in
--    0022_live_results.sql.
DROP TRIGGER jobs_batch_seq_update;
CREATE TRIGGER jobs_batch_seq_update AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND new.status IN ('succeeded', 'failed', 'cancelled')
	AND old.status NOT IN ('succeeded', 'failed', 'cancelled') AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE jobs SET batch_seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id) WHERE id = new.id;
END;

-- 5. No index of a batch's results by time. `jobs_batch_completed` (batch, completion time) cost a
--    row written for every batch job that finished, for `rate_per_minute` alone (the batch's jobs
--    that succeeded or failed in the last minute). That count now walks the last minute of
--    `jobs_completed`, every finished job of the service (shared/batches/progress.ts): as exact,
--    one statement for every batch shown, at most a minute of the service's results read.
DROP INDEX jobs_batch_completed;
