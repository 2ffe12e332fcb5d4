-- Where a sweep that ran out of its time budget stopped (docs/recovery.md): the next run of the
-- webhooks Worker's outbox sweep goes on from here instead of from the oldest event again, so a
-- backlog larger than one run is walked through in full, page after page, run after run. Deleted
-- when a run reaches the end of the backlog (the next pass starts from the oldest).
CREATE TABLE sweep_cursors (
	name TEXT PRIMARY KEY,
	created_at INTEGER NOT NULL,
	id TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
