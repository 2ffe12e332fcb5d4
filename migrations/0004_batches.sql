-- Batches: a prefix or a list of keys captioned as one resource, with counts kept up to
-- date as its jobs move, a durable listing checkpoint, and one final webhook event.
--
-- SQLite cannot change a CHECK constraint in place, so `jobs` and `webhook_events` are rebuilt: jobs
-- gain `batch_id`, the source 'batch' and the terminal status 'cancelled'; events may belong to a
-- batch instead of a job.

CREATE TABLE batches (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN ('listing', 'running', 'completed', 'cancelled')),
	bucket TEXT NOT NULL,
	-- Exactly one of: the listed prefix, or the number of distinct keys given.
	prefix TEXT,
	key_count INTEGER,
	-- The prefix every key of the batch starts with (a prefix batch: its prefix; a keys batch: the
	-- keys' longest common prefix). Scoped keys and subscription prefixes are matched against it.
	key_prefix TEXT NOT NULL,
	prompt TEXT,
	max_tokens INTEGER,
	callback_url TEXT,
	-- JSON object of up to 16 string pairs, returned as given.
	metadata TEXT NOT NULL,
	skip_captioned INTEGER NOT NULL CHECK (skip_captioned IN (0, 1)),
	-- The API key that created it (NULL: the admin token), for audit.
	key_id TEXT,
	-- Listing checkpoint: pages whose jobs exist, where the next page starts (an R2 list cursor;
	-- unused for keys batches, whose pages are ranges of batch_keys.seq), and the job ids of the last
	-- page until their caption messages are known to be sent (NULL once they are).
	pages_listed INTEGER NOT NULL DEFAULT 0,
	list_cursor TEXT,
	unsent_page INTEGER,
	unsent TEXT,
	-- Counts: the listing adds to total, queued, failed and skipped; the trigger below moves jobs
	-- between queued, processing, succeeded and failed; cancelling moves queued to cancelled.
	-- total = queued + processing + succeeded + failed + cancelled + skipped at every commit.
	total INTEGER NOT NULL DEFAULT 0,
	queued INTEGER NOT NULL DEFAULT 0,
	processing INTEGER NOT NULL DEFAULT 0,
	succeeded INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0,
	cancelled INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	listed_at INTEGER,
	-- Set once, when the batch is completed or cancelled and none of its jobs is queued or processing.
	completed_at INTEGER,
	CHECK ((prefix IS NULL) <> (key_count IS NULL))
);
CREATE INDEX batches_created ON batches (created_at DESC, id DESC);
CREATE INDEX batches_status_created ON batches (status, created_at DESC, id DESC);
-- The consumer's sweeper: listings whose checkpoint has not moved for a while.
CREATE INDEX batches_unfinished ON batches (updated_at) WHERE status = 'listing' OR unsent IS NOT NULL;

-- The keys of a keys batch, in the order given (distinct); the lister reads them a page at a time.
CREATE TABLE batch_keys (
	batch_id TEXT NOT NULL,
	seq INTEGER NOT NULL,
	key TEXT NOT NULL,
	PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;

-- Objects a batch skipped (skip_captioned) and the succeeded job that already holds their caption,
-- so that the batch's export still covers them.
CREATE TABLE batch_skips (
	batch_id TEXT NOT NULL,
	key TEXT NOT NULL,
	job_id TEXT NOT NULL,
	PRIMARY KEY (batch_id, key)
) WITHOUT ROWID;

CREATE TABLE jobs_new (
	id TEXT PRIMARY KEY,
	source TEXT NOT NULL CHECK (source IN ('notification', 'api', 'batch')),
	batch_id TEXT,
	bucket TEXT NOT NULL,
	key TEXT NOT NULL,
	etag TEXT NOT NULL,
	size INTEGER,
	content_type TEXT,
	prompt TEXT,
	max_tokens INTEGER,
	callback_url TEXT,
	status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'succeeded', 'failed', 'cancelled')),
	model TEXT,
	caption TEXT,
	error_code TEXT,
	error_message TEXT,
	attempts INTEGER NOT NULL DEFAULT 0,
	lease_token TEXT,
	lease_expires_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	started_at INTEGER,
	completed_at INTEGER,
	queue_ms INTEGER,
	inference_ms INTEGER,
	total_ms INTEGER
);
INSERT INTO jobs_new (id, source, bucket, key, etag, size, content_type, prompt, max_tokens, callback_url, status,
	model, caption, error_code, error_message, attempts, lease_token, lease_expires_at, created_at, updated_at,
	started_at, completed_at, queue_ms, inference_ms, total_ms)
SELECT id, source, bucket, key, etag, size, content_type, prompt, max_tokens, callback_url, status,
	model, caption, error_code, error_message, attempts, lease_token, lease_expires_at, created_at, updated_at,
	started_at, completed_at, queue_ms, inference_ms, total_ms
FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE UNIQUE INDEX jobs_notification_once ON jobs (bucket, key, etag) WHERE source = 'notification';
CREATE INDEX jobs_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_key_created ON jobs (key, created_at DESC, id DESC);
CREATE INDEX jobs_lease ON jobs (status, lease_expires_at) WHERE status IN ('queued', 'processing');
CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;
-- One job per object and batch, whichever page (or retry of a page) lists it; the export reads a
-- batch's jobs in key order through it.
CREATE UNIQUE INDEX jobs_batch_key ON jobs (batch_id, key) WHERE batch_id IS NOT NULL;
-- GET /v1/jobs?batch_id=…, newest first.
CREATE INDEX jobs_batch_created ON jobs (batch_id, created_at DESC, id DESC) WHERE batch_id IS NOT NULL;

-- Keeps a batch's counts equal to its jobs: every status change of a batch job moves one count, in
-- the statement (and so the transaction) that makes the change, whichever code path makes it
-- (claim, release, finish, sweeper, dead letters). Cancelling moves its jobs in bulk and adjusts
-- the counts itself (queued → cancelled in one UPDATE of the batch).
CREATE TRIGGER jobs_batch_counts AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND old.status <> new.status AND new.status <> 'cancelled'
BEGIN
	UPDATE batches SET
		queued = queued + (new.status = 'queued') - (old.status = 'queued'),
		processing = processing + (new.status = 'processing') - (old.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded') - (old.status = 'succeeded'),
		failed = failed + (new.status = 'failed') - (old.status = 'failed')
	WHERE id = new.batch_id;
END;

CREATE TABLE webhook_events_new (
	id TEXT PRIMARY KEY,
	-- A job's event (unique per job) or a batch's final event (unique per batch).
	job_id TEXT UNIQUE,
	batch_id TEXT UNIQUE,
	type TEXT NOT NULL CHECK (type IN ('job.succeeded', 'job.failed', 'batch.completed', 'batch.cancelled')),
	payload TEXT,
	created_at INTEGER NOT NULL,
	dispatched_at INTEGER,
	CHECK ((job_id IS NULL) <> (batch_id IS NULL))
);
INSERT INTO webhook_events_new (id, job_id, type, payload, created_at, dispatched_at)
SELECT id, job_id, type, payload, created_at, dispatched_at FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE INDEX webhook_events_undispatched ON webhook_events (created_at) WHERE dispatched_at IS NULL;
