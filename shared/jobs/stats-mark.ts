/**
 * What a claim or finish counted by its group's statements (shared/jobs/batched-counts.ts) sets on
 * its job's row (migrations/0031_claims_unindexed.sql): another `stats_mark` than the row had (0 and
 * 1 in turn), so that the triggers of the statistics and of the batch's counts, sums, models and
 * completion numbers leave this change to the group's statements. An insert counted so sets
 * STATS_MARK_INSERTED; every other writer leaves the mark as it is (an insert: NULL), and the
 * triggers count its change.
 */
export const STATS_MARK_CHANGED = "stats_mark = CASE WHEN stats_mark = 1 THEN 0 ELSE 1 END";
export const STATS_MARK_INSERTED = "1";
