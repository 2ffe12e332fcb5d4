-- Smaller rows (docs/data.md, docs/performance.md#capacity-d1-bytes-per-image): what an image
-- costs in D1 while its webhook rows are kept and what its latest job costs for good.
--
-- Indexes walked newest first are stored oldest first: SQLite reads an index backwards for
-- `ORDER BY created_at DESC, id DESC` just as fast, but a new row of a descending index on a
-- growing time goes to the b-tree's first page, and those splits leave every page half empty
-- (about 80 bytes a job instead of 50). Appended at the end, pages fill.
DROP INDEX jobs_created;
CREATE INDEX jobs_created ON jobs (created_at, id);
-- A key has few jobs: its rows of one millisecond are sorted by id when read, instead of each
-- entry carrying the 30-character id (about 37 bytes a job).
DROP INDEX jobs_key_created;
CREATE INDEX jobs_key_created ON jobs (key, created_at);
DROP INDEX jobs_batch_created;
CREATE INDEX jobs_batch_created ON jobs (batch_id, created_at, id) WHERE batch_id IS NOT NULL;
-- By status, the jobs that are not succeeded: the succeeded ones are nearly every job, and a list
-- of them walks jobs_created (almost every row it meets matches) instead of a second copy of it.
DROP INDEX jobs_status_created;
CREATE INDEX jobs_status_created ON jobs (status, created_at, id) WHERE status <> 'succeeded';
DROP INDEX batches_created;
CREATE INDEX batches_created ON batches (created_at, id);
DROP INDEX batches_status_created;
CREATE INDEX batches_status_created ON batches (status, created_at, id);
-- No query reads these: GET /v1/stats takes the open batches by batches_status_created, and a key
-- lists only its own subscriptions (webhook_subscriptions_key).
DROP INDEX batches_active;
DROP INDEX webhook_subscriptions_created;
CREATE INDEX webhook_subscriptions_created ON webhook_subscriptions (created_at, id);
DROP INDEX webhook_subscriptions_prefix;

-- A delivery no longer repeats its subscription: `target` was the subscription's id again (or
-- 'callback'), and `url` the subscription's URL, which does not change. A callback is the delivery
-- without a subscription, and only it keeps its URL (the job's or batch's callback URL). The
-- table is stored in its id order (no rowid, and no second copy of the id in a key index).
CREATE TABLE webhook_deliveries_new (
	id TEXT PRIMARY KEY,
	event_id TEXT NOT NULL,
	subscription_id TEXT,
	-- The callback URL; NULL for a subscription's delivery (the subscription's URL is sent to).
	url TEXT,
	status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts INTEGER NOT NULL DEFAULT 0,
	last_status_code INTEGER,
	last_error TEXT,
	lease_token TEXT,
	lease_expires_at INTEGER,
	next_attempt_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	completed_at INTEGER,
	key_id TEXT,
	CHECK ((subscription_id IS NULL) <> (url IS NULL))
) WITHOUT ROWID;
INSERT INTO webhook_deliveries_new (id, event_id, subscription_id, url, status, attempts, last_status_code, last_error,
	lease_token, lease_expires_at, next_attempt_at, created_at, updated_at, completed_at, key_id)
SELECT id, event_id, subscription_id, CASE WHEN subscription_id IS NULL THEN url END, status, attempts,
	last_status_code, last_error, lease_token, lease_expires_at, next_attempt_at, created_at, updated_at, completed_at, key_id
FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;
-- One delivery per event and target (a subscription, or the callback: '').
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (event_id, coalesce(subscription_id, ''));
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at, id)
	WHERE subscription_id IS NOT NULL;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Attempts are only ever read by their delivery: the table is that index (no rowid, no second
-- copy of the key).
CREATE TABLE webhook_attempts_new (
	delivery_id TEXT NOT NULL,
	attempt INTEGER NOT NULL,
	started_at INTEGER NOT NULL,
	status_code INTEGER,
	duration_ms INTEGER NOT NULL,
	error TEXT,
	PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;
INSERT INTO webhook_attempts_new SELECT delivery_id, attempt, started_at, status_code, duration_ms, error
FROM webhook_attempts;
DROP TABLE webhook_attempts;
ALTER TABLE webhook_attempts_new RENAME TO webhook_attempts;
