-- A succeeded job's write-back is `pending` until a delivery writes it; a consumer that died
-- between the job's finish and the write (its message's last delivery, or a local stack killed)
-- left it pending for good. The recovery sweep now re-sends such jobs by id
-- (workers/consumer/stalled-jobs.ts), and walks this index: only the pending write-backs, a
-- handful, whatever the number of jobs. An entry is written when a job's write-back becomes
-- pending and removed when it is written, skipped or failed.
CREATE INDEX jobs_write_back_pending ON jobs (id) WHERE write_back_status = 'pending';
