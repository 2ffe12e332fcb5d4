-- Live results and progress (described in docs/data.md and docs/batches.md).
--
-- 1. Completion order. Every result of a batch (a job that became succeeded, failed or cancelled, an
--    object skipped because it was already captioned, a given key that was not in the bucket) gets
--    the next number of its batch's `finished_seq` counter, in the transaction that makes it a
--    result. D1 runs one write transaction at a time, so the numbers grow in commit order: a reader
--    that sees number n has every number below n already, which is what lets
--    `GET /v1/batches/{id}/results?since=` page on without repeating or missing a row. Triggers do
--    the numbering, so every code path that finishes a job (consumer, sweeper, dead letters,
--    cancel) numbers it without knowing. A job made terminal again after a retry gets a new number.
ALTER TABLE batches ADD COLUMN finished_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN batch_seq INTEGER;
ALTER TABLE batch_skips ADD COLUMN seq INTEGER;
ALTER TABLE batch_missing ADD COLUMN seq INTEGER;

-- Results finished before this migration are numbered in the order they finished (skipped objects
-- and missing keys after the batch's jobs).
UPDATE jobs SET batch_seq = (
	SELECT n FROM (
		SELECT id, row_number() OVER (PARTITION BY batch_id ORDER BY completed_at, id) AS n
		FROM jobs WHERE batch_id IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled')
	) AS numbered WHERE numbered.id = jobs.id)
WHERE batch_id IS NOT NULL AND status IN ('succeeded', 'failed', 'cancelled');
UPDATE batch_skips SET seq = (SELECT count(*) FROM jobs j WHERE j.batch_id = batch_skips.batch_id AND j.batch_seq IS NOT NULL)
	+ (SELECT count(*) FROM batch_skips s WHERE s.batch_id = batch_skips.batch_id AND s.key <= batch_skips.key);
UPDATE batch_missing SET seq = (SELECT count(*) FROM jobs j WHERE j.batch_id = batch_missing.batch_id AND j.batch_seq IS NOT NULL)
	+ (SELECT count(*) FROM batch_skips s WHERE s.batch_id = batch_missing.batch_id)
	+ (SELECT count(*) FROM batch_missing m WHERE m.batch_id = batch_missing.batch_id AND m.key <= batch_missing.key);
UPDATE batches SET finished_seq = (SELECT count(*) FROM jobs j WHERE j.batch_id = batches.id AND j.batch_seq IS NOT NULL)
	+ (SELECT count(*) FROM batch_skips s WHERE s.batch_id = batches.id)
	+ (SELECT count(*) FROM batch_missing m WHERE m.batch_id = batches.id);

CREATE TRIGGER jobs_batch_seq_update AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND new.status IN ('succeeded', 'failed', 'cancelled')
	AND old.status NOT IN ('succeeded', 'failed', 'cancelled')
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE jobs SET batch_seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id) WHERE id = new.id;
END;
CREATE TRIGGER jobs_batch_seq_insert AFTER INSERT ON jobs
WHEN new.batch_id IS NOT NULL AND new.status IN ('succeeded', 'failed', 'cancelled')
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE jobs SET batch_seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id) WHERE id = new.id;
END;
CREATE TRIGGER batch_skips_seq AFTER INSERT ON batch_skips
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE batch_skips SET seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id)
	WHERE batch_id = new.batch_id AND key = new.key;
END;
CREATE TRIGGER batch_missing_seq AFTER INSERT ON batch_missing
BEGIN
	UPDATE batches SET finished_seq = finished_seq + 1 WHERE id = new.batch_id;
	UPDATE batch_missing SET seq = (SELECT finished_seq FROM batches WHERE id = new.batch_id)
	WHERE batch_id = new.batch_id AND key = new.key;
END;

-- The results export with `since` reads each source in completion order from these.
CREATE INDEX jobs_batch_seq ON jobs (batch_id, batch_seq) WHERE batch_seq IS NOT NULL;
CREATE INDEX batch_skips_seq ON batch_skips (batch_id, seq);
CREATE INDEX batch_missing_seq ON batch_missing (batch_id, seq);

-- 2. Rate: a batch's `rate_per_minute` counts its jobs that succeeded or failed in the last minute,
--    a range of this index no longer than a minute of model calls.
CREATE INDEX jobs_batch_completed ON jobs (batch_id, completed_at)
WHERE batch_id IS NOT NULL AND status IN ('succeeded', 'failed');

-- 3. `batch.progress` events: many per batch, each with its body fixed when it is recorded (the
--    batch goes on changing). SQLite cannot change a CHECK or drop a UNIQUE in place, so the outbox
--    is rebuilt, keeping every row's rowid (the order events became visible in). A batch still
--    has exactly one final event (`batch.completed` or `batch.cancelled`): a partial unique index.
CREATE TABLE webhook_events_new (
	id TEXT PRIMARY KEY,
	job_id TEXT UNIQUE,
	batch_id TEXT,
	type TEXT NOT NULL CHECK (type IN ('job.succeeded', 'job.failed', 'batch.completed', 'batch.cancelled', 'batch.progress',
		'caption.updated')),
	payload TEXT,
	created_at INTEGER NOT NULL,
	dispatched_at INTEGER,
	-- A `caption.updated` event (0020_caption_versions.sql) is about an object: no job, no batch, its
	-- payload stored. Every other event is a job's or a batch's.
	CHECK (CASE WHEN type = 'caption.updated' THEN job_id IS NULL AND batch_id IS NULL AND payload IS NOT NULL
		ELSE (job_id IS NULL) <> (batch_id IS NULL) END)
);
INSERT INTO webhook_events_new (rowid, id, job_id, batch_id, type, payload, created_at, dispatched_at)
SELECT rowid, id, job_id, batch_id, type, payload, created_at, dispatched_at FROM webhook_events;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE UNIQUE INDEX webhook_events_batch_final ON webhook_events (batch_id)
WHERE type IN ('batch.completed', 'batch.cancelled');
CREATE INDEX webhook_events_batch ON webhook_events (batch_id, created_at) WHERE batch_id IS NOT NULL;
CREATE INDEX webhook_events_undispatched ON webhook_events (created_at) WHERE dispatched_at IS NULL;

-- When a batch's progress last went to each of its channels: the event stream ('stream': a
-- `batch.progress` row in webhook_events, at most once every five seconds per batch) and each
-- subscription (its id: a delivery of the latest such row, at most once a minute per batch). A
-- claim is one conditional upsert that writes its own `token`; the insert it allows checks that
-- token in the same transaction, so of two finishes at once only one sends.
CREATE TABLE batch_progress_marks (
	batch_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	sent_at INTEGER NOT NULL,
	token TEXT NOT NULL,
	PRIMARY KEY (batch_id, channel)
) WITHOUT ROWID;
