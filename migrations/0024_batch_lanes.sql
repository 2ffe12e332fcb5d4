-- Scheduling (docs/models.md, "Lanes"): a batch may spill over to another task type's rate limit,
-- and reports how many of its captions each model made.
-- `spillover` 1: the batch's captions take a slot of whichever task type has one first.
ALTER TABLE batches ADD COLUMN spillover INTEGER NOT NULL DEFAULT 0;
-- JSON object, model id -> succeeded jobs of the batch captioned by that model; kept by the trigger
-- below as jobs succeed, so reading it costs nothing per job.
ALTER TABLE batches ADD COLUMN models TEXT NOT NULL DEFAULT '{}';

CREATE TRIGGER jobs_batch_models AFTER UPDATE OF status ON jobs
WHEN new.batch_id IS NOT NULL AND new.model IS NOT NULL AND new.status = 'succeeded' AND old.status <> 'succeeded'
BEGIN
	UPDATE batches SET models = json_set(models, '$."' || new.model || '"',
		coalesce(json_extract(models, '$."' || new.model || '"'), 0) + 1)
	WHERE id = new.batch_id;
END;
