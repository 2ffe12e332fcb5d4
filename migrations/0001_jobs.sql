-- Jobs: one row per captioning job (described in docs/data.md).
--
-- A notification-made job is unique per object version (bucket, key, etag): duplicate R2
-- notifications land on the same row. Jobs requested through the API (source = 'api') are
-- separate rows for the same object version, so the uniqueness is a partial index.
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	source TEXT NOT NULL CHECK (source IN ('notification', 'api')),
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	etag TEXT NOT NULL,
	size INTEGER,
	content_type TEXT,
	prompt TEXT,
	max_tokens INTEGER,
	callback_url TEXT,
	status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
	model TEXT,
	caption TEXT,
	error_code TEXT,
	error_message TEXT,
	attempts INTEGER NOT NULL DEFAULT 0,
	-- Processing lease: a job whose lease has expired may be claimed again.
	lease_token TEXT,
	lease_expires_at INTEGER,
	-- Times are Unix milliseconds; the API renders them as ISO 8601.
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	started_at INTEGER,
	completed_at INTEGER,
	queue_ms INTEGER,
	inference_ms INTEGER,
	total_ms INTEGER
);

CREATE UNIQUE INDEX jobs_notification_once ON jobs (bucket, key, etag) WHERE source = 'notification';

-- Newest-first keyset pagination: ORDER BY created_at DESC, id DESC.
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, id DESC);
-- Serves `key` (exact) and `prefix` (range key >= p AND key < p || x'ff…').
CREATE INDEX jobs_key_created ON jobs (key, created_at DESC, id DESC);
-- Lease sweeper and stats over recent completions.
CREATE INDEX jobs_lease ON jobs (status, lease_expires_at) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;

-- Service counters (for example messages that were not valid notifications).
CREATE TABLE counters (
	name TEXT PRIMARY KEY,
	value INTEGER NOT NULL DEFAULT 0
);
