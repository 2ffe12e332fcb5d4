-- Batches count against the API key that made them (described in docs/batches.md and docs/data.md).
--
-- A given key that is not in the bucket costs nothing downstream: no job, no event, no webhook. It
-- is recorded here instead (and counted in `batches.missing`), so that the batch's counts and its
-- results export still cover it. `page` is the listing page that recorded it: the page's commit
-- counts the rows it wrote from it (a page that repeats a key adds nothing).
CREATE TABLE batch_missing (
	batch_id TEXT NOT NULL,
	key TEXT NOT NULL,
	page INTEGER NOT NULL,
	PRIMARY KEY (batch_id, key)
) WITHOUT ROWID;

-- Given keys that were not in the bucket. total = queued + processing + succeeded + failed +
-- cancelled + skipped + missing. Batches listed before this migration kept a failed job for each.
ALTER TABLE batches ADD COLUMN missing INTEGER NOT NULL DEFAULT 0;

-- MAX_OPEN_BATCHES_PER_KEY counts a key's batches still listing or running through this index, at
-- most the limit's worth of entries.
CREATE INDEX batches_key_open ON batches (key_id) WHERE key_id IS NOT NULL AND status IN ('listing', 'running');
