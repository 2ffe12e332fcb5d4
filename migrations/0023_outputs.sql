-- Outputs fit for where they are used (docs/data.md, docs/jobs.md "Outputs").
--
-- A job's explicit `output` ('caption', 'alt_text', 'tags', 'title', or '{"json_schema":…}' as
-- JSON text), `language` (a BCP 47 tag) and `write_back` ('sidecar:overwrite', 'metadata:skip', …)
-- are stored like its prompt: null when not given; the finish fills in what the job ran with.
-- `result` is the validated result as JSON text (a string, an array of tags or an object).
-- `write_back_status` is 'pending' from the finish until the write-back is done ('written',
-- 'skipped' or 'failed', with `write_back_error`); `write_back_lease` keeps two deliveries of one
-- message from writing at once (ms since the epoch; a write-back whose lease expired is taken again).
ALTER TABLE jobs ADD COLUMN output TEXT;
ALTER TABLE jobs ADD COLUMN language TEXT;
ALTER TABLE jobs ADD COLUMN result TEXT;
ALTER TABLE jobs ADD COLUMN write_back TEXT;
ALTER TABLE jobs ADD COLUMN write_back_status TEXT;
ALTER TABLE jobs ADD COLUMN write_back_error TEXT;
ALTER TABLE jobs ADD COLUMN write_back_lease INTEGER;

-- A batch's options for every job it makes, stored the same way.
ALTER TABLE batches ADD COLUMN output TEXT;
ALTER TABLE batches ADD COLUMN language TEXT;
ALTER TABLE batches ADD COLUMN write_back TEXT;

-- Presets: options for every object under `prefix` (the longest matching prefix wins); explicit
-- options and object metadata override a preset field by field. `key_id` is the API key that made
-- it (null for the admin).
CREATE TABLE presets (
	name TEXT PRIMARY KEY,
	prefix TEXT NOT NULL,
	output TEXT NOT NULL,
	prompt TEXT,
	language TEXT,
	max_tokens INTEGER,
	write_back TEXT,
	key_id TEXT,
	created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX presets_prefix ON presets (prefix);
