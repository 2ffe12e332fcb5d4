-- A job made in a notification job's place (shared/jobs/written-again.ts): the same bytes written
-- over their key again (A, then B over it, then A again: one etag) after that notification job
-- failed object_not_found, or finished before a caption of other bytes became current. `replaces`
-- is that notification job's id, so the jobs made in its place are told apart from a job of
-- `POST /v1/jobs` for the same bytes (which has no options key of its own: '') and resolve their
-- options as an upload's notification job does. NULL for every other job. No index: these jobs are
-- read through their key (jobs_key_created), and a key has few jobs.
ALTER TABLE jobs ADD COLUMN replaces TEXT;
