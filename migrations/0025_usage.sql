-- Usage (docs/api.md#usage): the tokens a job's model calls reported, and their sum per batch.
--
-- A job's two columns are NULL until one of its calls reports tokens (llava-1.5 and
-- llama-3.2-vision report none; moondream, llama-4-scout, mistral-small-3.1 and gemma-4 do). Each
-- attempt adds its calls' tokens in the statement that ends it (the finish, or the release after a
-- transient error), never in a separate write. Two nullable integers cost a row 2 header bytes,
-- and about 3 more with moondream's counts (729 takes 2 bytes, a caption's few dozen 1).
ALTER TABLE jobs ADD COLUMN input_tokens INTEGER;
ALTER TABLE jobs ADD COLUMN output_tokens INTEGER;

-- A batch's sums, kept like its counts: in the statement that changes a job's status, by the
-- difference between the job's tokens after and before it. Every statement that changes a job's
-- tokens also changes its status, so the sums always equal the sums over the batch's jobs; a
-- redelivered message whose finish finds the job already finished writes nothing, so adds nothing.
ALTER TABLE batches ADD COLUMN input_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE batches ADD COLUMN output_tokens INTEGER NOT NULL DEFAULT 0;
-- Jobs of the batch whose calls reported tokens (the others' calls are not in the sums).
ALTER TABLE batches ADD COLUMN jobs_with_usage INTEGER NOT NULL DEFAULT 0;
-- When a dry run was started (POST /v1/batches/{id}/start): its plan's estimate stays in the Batch
-- JSON beside the usage, to compare. NULL for a batch that never was a plan, or not started yet.
ALTER TABLE batches ADD COLUMN started_at INTEGER;

-- The counts' trigger (as migrations/0020_caption_versions.sql made it) with the sums in the same
-- UPDATE of the batch row: no row more is written per job.
DROP TRIGGER jobs_batch_counts;
CREATE TRIGGER jobs_batch_counts AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND old.status <> new.status AND new.status <> 'cancelled'
BEGIN
	UPDATE batches SET
		queued = queued + (new.status = 'queued') - (old.status = 'queued'),
		processing = processing + (new.status = 'processing') - (old.status = 'processing'),
		succeeded = succeeded + (new.status = 'succeeded') - (old.status = 'succeeded'),
		failed = failed + (new.status = 'failed') - (old.status = 'failed'),
		input_tokens = input_tokens + coalesce(new.input_tokens, 0) - coalesce(old.input_tokens, 0),
		output_tokens = output_tokens + coalesce(new.output_tokens, 0) - coalesce(old.output_tokens, 0),
		jobs_with_usage = jobs_with_usage + (new.input_tokens IS NOT NULL) - (old.input_tokens IS NOT NULL)
	WHERE id = new.batch_id;
END;
