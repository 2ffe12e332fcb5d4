-- Limits: who made a job, and the options it was uploaded with (described in docs/data.md).
--
-- `key_id` (added by 0006_tenancy.sql): the API key whose upload or POST /v1/jobs made the job (NULL:
-- the admin token, a direct bucket upload, a batch). The partial index holds only that key's jobs in flight, so the per-key
-- cap (MAX_JOBS_IN_FLIGHT) counts at most the cap's worth of index entries, never the table.
--
-- `options_key`: a digest of the object's caption metadata (prompt, max-tokens, callback-url; ''
-- when it has none). A notification job is unique per object version AND options, so uploading the
-- same bytes again with other options makes a new job instead of landing on the old one. Rows from
-- before this migration keep ''.
ALTER TABLE jobs ADD COLUMN options_key TEXT NOT NULL DEFAULT '';

DROP INDEX jobs_notification_once;
CREATE UNIQUE INDEX jobs_notification_once ON jobs (bucket, key, etag, options_key) WHERE source = 'notification';
CREATE INDEX jobs_key_in_flight ON jobs (key_id) WHERE key_id IS NOT NULL AND status IN ('queued', 'processing');
