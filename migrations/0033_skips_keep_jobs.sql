-- A batch's skipped objects point at the earlier jobs that hold their captions
-- (`batch_skips.job_id`), and the batch's results export reads those jobs. Retention keeps such a
-- job while a batch that skipped to it is kept (workers/consumer/retention-kinds.ts), and asks
-- this index, one probe per job it looks at, instead of reading every skip of every batch. Only
-- skips to a job are indexed: a skip of a person's caption has none.
CREATE INDEX batch_skips_job ON batch_skips (job_id) WHERE job_id IS NOT NULL;
