-- The statistics' jobs by status in one row per scope (docs/performance.md, "D1 rows written per
-- image"; docs/data.md, "A claim writes only its row (0031), one counter row per scope (0032)").
--
-- `job_counts` held one row per (scope, status): a claim moved two of them per scope (queued − 1,
-- processing + 1) and a finish two more (processing − 1, succeeded or failed + 1), once per queue
-- batch's transaction since 0029 but still two rows written each time. `scope_counts` holds the
-- five counts of a scope in one row, so each of those moves writes one row per scope. The counts
-- are copied as they are; `job_counts` stays readable with the same rows (scope, status, n) as a
-- view of it, so GET /v1/stats (workers/status/jobs/stat-counters.ts) reads it unchanged, five
-- rows a scope as before. The triggers that kept `job_counts` keep `scope_counts` in the same
-- statements and under the same conditions (0031's mark, the older bracket), with the same sums.
-- Code older than this migration updates `job_counts` in its counted transactions: a view refuses
-- that, the transaction fails, and that code writes each claim or finish alone, counted by the
-- triggers here (exact, slower), until the Workers are deployed.
CREATE TABLE scope_counts (
	scope TEXT PRIMARY KEY,
	queued INTEGER NOT NULL DEFAULT 0,
	processing INTEGER NOT NULL DEFAULT 0,
	succeeded INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0,
	cancelled INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO scope_counts (scope, queued, processing, succeeded, failed, cancelled)
SELECT scope, sum(CASE WHEN status = 'queued' THEN n ELSE 0 END), sum(CASE WHEN status = 'processing' THEN n ELSE 0 END),
	sum(CASE WHEN status = 'succeeded' THEN n ELSE 0 END), sum(CASE WHEN status = 'failed' THEN n ELSE 0 END),
	sum(CASE WHEN status = 'cancelled' THEN n ELSE 0 END)
FROM job_counts GROUP BY scope;

DROP TABLE job_counts;

CREATE VIEW job_counts (scope, status, n) AS
	SELECT scope, 'queued', queued FROM scope_counts
	UNION ALL SELECT scope, 'processing', processing FROM scope_counts
	UNION ALL SELECT scope, 'succeeded', succeeded FROM scope_counts
	UNION ALL SELECT scope, 'failed', failed FROM scope_counts
	UNION ALL SELECT scope, 'cancelled', cancelled FROM scope_counts;

-- A new scope counts its jobs (as in 0008_bounded_stats.sql: through the key index) and its
-- completions of the last 25 hours.
DROP TRIGGER stat_scopes_backfill;
CREATE TRIGGER stat_scopes_backfill AFTER INSERT ON stat_scopes
BEGIN
	INSERT INTO scope_counts (scope, queued, processing, succeeded, failed, cancelled)
	SELECT new.prefix, coalesce(sum(status = 'queued'), 0), coalesce(sum(status = 'processing'), 0),
		coalesce(sum(status = 'succeeded'), 0), coalesce(sum(status = 'failed'), 0), coalesce(sum(status = 'cancelled'), 0)
	FROM jobs
	WHERE key >= new.prefix AND key < (CASE WHEN new.prefix = '' OR unicode(substr(new.prefix, -1)) >= 1114111
			THEN x'' ELSE substr(new.prefix, 1, length(new.prefix) - 1) || char(unicode(substr(new.prefix, -1)) + 1) END)
		AND substr(key, 1, length(new.prefix)) = new.prefix;
	INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
	SELECT new.prefix, g.value, j.completed_at - j.completed_at % (g.value * 1000), count(*),
		sum(j.status = 'succeeded'), sum(j.status = 'failed')
	FROM jobs j, json_each('[30, 900]') g
	WHERE j.completed_at >= new.created_at - 90000000 AND substr(j.key, 1, length(new.prefix)) = new.prefix
	GROUP BY 1, 2, 3;
END;

DROP TRIGGER jobs_stats_insert;
CREATE TRIGGER jobs_stats_insert AFTER INSERT ON jobs
WHEN new.stats_mark IS NULL AND NOT EXISTS (SELECT 1 FROM stats_deferred)
BEGIN
	UPDATE scope_counts SET queued = queued + (new.status = 'queued'), processing = processing + (new.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded'), failed = failed + (new.status = 'failed'),
		cancelled = cancelled + (new.status = 'cancelled')
	WHERE scope IN (SELECT prefix FROM stat_scopes WHERE substr(new.key, 1, length(prefix)) = prefix);
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
	UPDATE scope_counts SET
		queued = queued + (new.status = 'queued') - (old.status = 'queued'),
		processing = processing + (new.status = 'processing') - (old.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded') - (old.status = 'succeeded'),
		failed = failed + (new.status = 'failed') - (old.status = 'failed'),
		cancelled = cancelled + (new.status = 'cancelled') - (old.status = 'cancelled')
	WHERE scope IN (SELECT prefix FROM stat_scopes WHERE substr(new.key, 1, length(prefix)) = prefix);
	INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
	SELECT s.prefix, g.value, new.completed_at - new.completed_at % (g.value * 1000), 1,
		new.status = 'succeeded', new.status = 'failed'
	FROM stat_scopes s, json_each('[30, 900]') g
	WHERE old.completed_at IS NULL AND new.completed_at IS NOT NULL
		AND substr(new.key, 1, length(s.prefix)) = s.prefix
	ON CONFLICT (scope, bucket_seconds, start) DO UPDATE SET completed = completed + 1,
		succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed;
END;

DROP TRIGGER jobs_stats_delete;
CREATE TRIGGER jobs_stats_delete AFTER DELETE ON jobs
BEGIN
	UPDATE scope_counts SET queued = queued - (old.status = 'queued'), processing = processing - (old.status = 'processing'),
		succeeded = succeeded - (old.status = 'succeeded'), failed = failed - (old.status = 'failed'),
		cancelled = cancelled - (old.status = 'cancelled')
	WHERE scope IN (SELECT prefix FROM stat_scopes WHERE substr(old.key, 1, length(prefix)) = prefix);
END;
