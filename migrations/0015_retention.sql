-- Retention (described in docs/data.md#retention): the consumer's cron archives rows to R2 and then
-- deletes them. A part (one gzipped JSON Lines file of the archive) is recorded here, with the ids
-- of the rows it holds, before it is written to R2; the statement that deletes those rows deletes
-- this record in the same transaction. A run that stopped between the two (a crash, a D1 error)
-- leaves the record behind, and the next run writes the same part again under the same name
-- before it deletes: no row is lost, and none lands in the archive twice.
CREATE TABLE retention_parts (
	-- The part's key in the archive bucket.
	name TEXT PRIMARY KEY,
	-- What it archives ('jobs', 'webhook_events', 'batches'): at most one part of each is pending.
	kind TEXT NOT NULL UNIQUE,
	-- JSON array of the ids of the rows it holds.
	ids TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
