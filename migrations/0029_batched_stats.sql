-- Statistics counters written once per consumer write instead of once per job (docs/data.md,
-- "Statistics counters"). The consumer claims and finishes the jobs of a queue batch in one D1
-- batch (a transaction) each, and adds their changes to `job_counts` and `job_completions` in
-- that same transaction, one row per scope and status (shared/jobs/batched-counts.ts). While it
-- does, the transaction holds the row of `stats_deferred`, and the triggers of
-- 0008_bounded_stats.sql leave those changes to it; every other change of a job (uploads, the
-- API, cancels, releases, sweeps, dead letters) is still counted by the triggers, in its own
-- statement. The row is inserted and deleted inside the one transaction, so no other statement
-- ever sees it (D1 runs one transaction at a time), and a transaction that fails leaves neither
-- the jobs nor the counts changed.
CREATE TABLE stats_deferred (id INTEGER PRIMARY KEY CHECK (id = 1));

DROP TRIGGER IF EXISTS jobs_stats_insert;
CREATE TRIGGER jobs_stats_insert AFTER INSERT ON jobs
WHEN NOT EXISTS (SELECT 1 FROM stats_deferred)
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

DROP TRIGGER IF EXISTS jobs_stats_update;
CREATE TRIGGER jobs_stats_update AFTER UPDATE OF status ON jobs
WHEN old.status <> new.status AND NOT EXISTS (SELECT 1 FROM stats_deferred)
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
