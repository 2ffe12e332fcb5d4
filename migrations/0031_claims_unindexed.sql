-- Fewer D1 rows written per image, after 0030_fewer_rows.sql (docs/performance.md, "D1 rows
-- written per image"; docs/data.md, "A claim writes only its row (0031)").
--
-- 1. A claim moves no index entry. `jobs_status_created` (status, created_at, id) over every job
--    that was not succeeded moved a job's entry from `queued` to `processing` at its claim (a row
--    written per image), because its key holds the status. The unfinished jobs (queued and
--    processing: the only ones without a completion time) are now indexed by `jobs_unfinished`,
--    whose key and condition hold neither the status nor anything else a claim, a release or the
--    stalled-job sweep's re-queue sets: those statements write no entry of it. A job enters it when
--    it is made and leaves it when it is finished (an entry removed writes no row). The lists of
--    queued or processing jobs walk it newest first and check the status on the rows walked (a
--    capped walk, workers/status/jobs/list.ts), the stalled-job sweep walks it whole as it walked
--    the two statuses before. `jobs_status_created` keeps the failed and cancelled jobs, for their
--    lists: a job enters it when it is finished so (as it moved into it before).
DROP INDEX jobs_status_created;
CREATE INDEX jobs_unfinished ON jobs (created_at, id) WHERE completed_at IS NULL;
CREATE INDEX jobs_status_created ON jobs (status, created_at, id) WHERE status IN ('failed', 'cancelled');

-- 2. No bracket row around the consumer's counted claims and finishes. Since 0029 a transaction
--    that counts its own changes (shared/jobs/batched-counts.ts) inserted the row of
--    `stats_deferred` before them and deleted it after (two rows written per transaction), so that
--    the triggers below left those changes to it. The claims and finishes of such a transaction now
--    say so on the rows they change: each sets its job's `stats_mark` to another value (0 and 1 in
--    turn; an insert sets 1), and the triggers leave a change alone when the statement changed the
--    mark (an insert: when it set one). Every other writer leaves the mark as it is (an insert:
--    NULL) and is counted by the triggers as before. The bracket is still honoured, for code older
--    than this migration (its transactions hold the row, and the listing pages still use it): either
--    deploy order keeps the counts exact (docs/data.md). The mark is stored in the row's header alone
--    (0 and 1 take no bytes of their own).
ALTER TABLE jobs ADD COLUMN stats_mark INTEGER;

DROP TRIGGER jobs_stats_insert;
CREATE TRIGGER jobs_stats_insert AFTER INSERT ON jobs
WHEN new.stats_mark IS NULL AND NOT EXISTS (SELECT 1 FROM stats_deferred)
BEGIN
	UPDATE job_counts SET n = n + 1
	WHERE status = new.status
		AND scope IN (SELECT prefix FROM stat_scopes WHERE substr(new.key, 1, length(prefix)) = prefix);
	INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
	SELECT s.prefix, g.value, new.completed_at - new.completed_at % (g.value * 1000), 1,
		new.status = 'succeeded', new.status = 'failed'
	FROM stat_scopes s, json_each('[30, 900]') g
	WHERE new.completed_at IS NOT NULL AND substr(new.key, 1, length(s.prefix)) = s.prefix
	ON CONFLICT (scope, bucket_seconds, start) DO UPDATE SET completed = completed + 1,
		succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed;
END;

DROP TRIGGER jobs_stats_update;
CREATE TRIGGER jobs_stats_update AFTER UPDATE OF status ON jobs
WHEN old.status <> new.status AND old.stats_mark IS new.stats_mark AND NOT EXISTS (SELECT 1 FROM stats_deferred)
BEGIN
	UPDATE job_counts SET n = n + (status = new.status) - (status = old.status)
	WHERE status IN (old.status, new.status)
		AND scope IN (SELECT prefix FROM stat_scopes WHERE substr(new.key, 1, length(prefix)) = prefix);
	INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
	SELECT s.prefix, g.value, new.completed_at - new.completed_at % (g.value * 1000), 1,
		new.status = 'succeeded', new.status = 'failed'
	FROM stat_scopes s, json_each('[30, 900]') g
	WHERE old.completed_at IS NULL AND new.completed_at IS NOT NULL
		AND substr(new.key, 1, length(s.prefix)) = s.prefix
	ON CONFLICT (scope, bucket_seconds, start) DO UPDATE SET completed = completed + 1,
		succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed;
END;

DROP TRIGGER jobs_batch_counts;
CREATE TRIGGER jobs_batch_counts AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND old.status <> new.status AND new.status <> 'cancelled'
	AND old.stats_mark IS new.stats_mark AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
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
	AND old.status <> 'succeeded' AND old.stats_mark IS new.stats_mark
	AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
BEGIN
	UPDATE batches SET models = json_set(models,
		'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"',
		coalesce(json_extract(models,
			'$."' || coalesce(new.model, (SELECT t.text FROM job_texts t WHERE t.id = new.model_id)) || '"'), 0) + 1)
	WHERE id = new.batch_id;
END;

DROP TRIGGER jobs_batch_seq_update;
CREATE TRIGGER jobs_batch_seq_update AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND new.status IN ('succeeded', 'failed', 'cancelled')
	AND old.status NOT IN ('succeeded', 'failed', 'cancelled') AND old.stats_mark IS new.stats_mark
	AND NOT EXISTS (SELECT 1 FROM stats_deferred WHERE batches = 1)
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE jobs SET batch_seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id) WHERE id = new.id;
END;
