-- Bounded statistics and lists (described in docs/data.md): GET /v1/stats and
-- /v1/stats/series read counters instead of scanning jobs. Triggers on `jobs` keep the counters in
-- the statement (and so the transaction) that changes a job, whichever code path makes the change
-- (claim, release, finish, cancel, sweeper, dead letters), as `jobs_batch_counts` does for batches.

-- The scopes counters are kept for: '' (the whole service) and every prefix an API key is limited
-- to (added when such a key is created, or by the first stats request of an unknown prefix).
-- Adding a scope counts its existing jobs once (the trigger below); every job change then moves
-- the counters of each scope whose prefix its key starts with.
CREATE TABLE stat_scopes (
	prefix TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Jobs by status, per scope: one row per (scope, status), all five made with the scope.
CREATE TABLE job_counts (
	scope TEXT NOT NULL,
	status TEXT NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (scope, status)
) WITHOUT ROWID;

-- Jobs that reached a terminal state, per scope and time bucket (by completed_at): 30-second
-- buckets (the 5m and 1h windows, the 15m and 1h series) and 15-minute buckets (24h). Buckets
-- older than 25 hours are deleted as new ones start.
CREATE TABLE job_completions (
	scope TEXT NOT NULL,
	bucket_seconds INTEGER NOT NULL CHECK (bucket_seconds IN (30, 900)),
	start INTEGER NOT NULL,
	completed INTEGER NOT NULL,
	succeeded INTEGER NOT NULL,
	failed INTEGER NOT NULL,
	PRIMARY KEY (scope, bucket_seconds, start)
) WITHOUT ROWID;

CREATE TRIGGER job_completions_prune AFTER INSERT ON job_completions
BEGIN
	DELETE FROM job_completions
	WHERE scope = new.scope AND bucket_seconds = new.bucket_seconds AND start < new.start - 90000000;
END;

-- A new scope counts its jobs (through the key index: the range [prefix, prefix with its last
-- code point incremented), or every key for '' or a prefix ending in U+10FFFF, since any TEXT
-- sorts before a BLOB) and its completions of the last 25 hours.
CREATE TRIGGER stat_scopes_backfill AFTER INSERT ON stat_scopes
BEGIN
	INSERT INTO job_counts (scope, status, n)
	SELECT new.prefix, s.value, coalesce(c.n, 0)
	FROM json_each('["queued", "processing", "succeeded", "failed", "cancelled"]') s
	LEFT JOIN (
		SELECT status, count(*) AS n FROM jobs
		WHERE key >= new.prefix AND key < (CASE WHEN new.prefix = '' OR unicode(substr(new.prefix, -1)) >= 1114111
				THEN x'' ELSE substr(new.prefix, 1, length(new.prefix) - 1) || char(unicode(substr(new.prefix, -1)) + 1) END)
			AND substr(key, 1, length(new.prefix)) = new.prefix
		GROUP BY status
	) c ON c.status = s.value;
	INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
	SELECT new.prefix, g.value, j.completed_at - j.completed_at % (g.value * 1000), count(*),
		sum(j.status = 'succeeded'), sum(j.status = 'failed')
	FROM jobs j, json_each('[30, 900]') g
	WHERE j.completed_at >= new.created_at - 90000000 AND substr(j.key, 1, length(new.prefix)) = new.prefix
	GROUP BY 1, 2, 3;
END;

CREATE TRIGGER jobs_stats_insert AFTER INSERT ON jobs
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

CREATE TRIGGER jobs_stats_update AFTER UPDATE OF status ON jobs
WHEN old.status <> new.status
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

CREATE TRIGGER jobs_stats_delete AFTER DELETE ON jobs
BEGIN
	UPDATE job_counts SET n = n - 1
	WHERE status = old.status
		AND scope IN (SELECT prefix FROM stat_scopes WHERE substr(old.key, 1, length(prefix)) = prefix);
END;

-- Scoped API keys register their prefix as they are created.
CREATE TRIGGER api_keys_stat_scope AFTER INSERT ON api_keys
WHEN new.prefix IS NOT NULL
BEGIN
	INSERT INTO stat_scopes (prefix, created_at) VALUES (new.prefix, new.created_at) ON CONFLICT (prefix) DO NOTHING;
END;

-- The backfill: the whole service and the prefixes of the keys that exist.
INSERT INTO stat_scopes (prefix, created_at)
SELECT '', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
INSERT INTO stat_scopes (prefix, created_at)
SELECT DISTINCT prefix, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM api_keys
WHERE prefix IS NOT NULL AND prefix <> ''
ON CONFLICT (prefix) DO NOTHING;

-- GET /v1/stats' batches in progress: newest first through the active ones only.
CREATE INDEX batches_active ON batches (created_at DESC, id DESC) WHERE status IN ('listing', 'running');
