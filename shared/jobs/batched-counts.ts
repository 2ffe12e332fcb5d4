/**
 * The statistics counters of a group of claims or finishes, written once per group instead of once
 * per job (migrations/0029_batched_stats.sql). The statements here go into the same D1 batch (one
 * transaction) as the claims or finishes they count, before them: they read which jobs the claims
 * or finishes will change, with the same conditions those statements test, so the counts moved are
 * exactly the changes made. The claims and finishes they count mark their rows (./stats-mark.ts),
 * and the triggers of 0008_bounded_stats.sql leave those rows' changes to them (a listing page's inserts
 * are bracketed instead: deferredCountsBracket). A counter row is written only when its count changes.
 */
import { notificationJobOf } from "./notification-once";
import { JOB_STATUSES } from "./schema";

/**
 * The inserts of a transaction that counts its own changes (a listing page's,
 * workers/consumer/batch-pages.ts): its first and last statements. While the row of `stats_deferred`
 * exists the triggers count nothing; `batches` = 1 says the transaction moves its batches' counts too
 * (migrations/0030_fewer_rows.sql). The consumer's claims and finishes mark their rows instead
 * (./stats-mark.ts): no bracket, two rows written less per transaction.
 */
export function deferredCountsBracket(db: D1Database): [D1PreparedStatement, D1PreparedStatement] {
	return [
		db.prepare("INSERT INTO stats_deferred (id, batches) VALUES (1, 1)"),
		db.prepare("DELETE FROM stats_deferred"),
	];
}

/**
 * Adds `moves` (a CTE of (key, status, d) rows: a job of that key entering (+1) or leaving (-1) that
 * status) to `scope_counts`, one row per scope whose counts change (all five counts of a scope are
 * one row: migrations/0032_scope_counts.sql, a column per job status).
 */
const countMoves = (ctes: string, moves: string) =>
	`WITH ${ctes}, moves(key, status, d) AS (${moves}),
	delta AS MATERIALIZED (
		SELECT s.prefix AS scope, ${JOB_STATUSES.map((status) => `sum(m.d * (m.status = '${status}')) AS ${status}`).join(", ")}
		FROM moves m JOIN stat_scopes s ON substr(m.key, 1, length(s.prefix)) = s.prefix
		GROUP BY s.prefix
		HAVING ${JOB_STATUSES.map((status) => `${status} <> 0`).join(" OR ")}
	)
	UPDATE scope_counts SET ${JOB_STATUSES.map((status) => `${status} = scope_counts.${status} + delta.${status}`).join(", ")}
	FROM delta WHERE scope_counts.scope = delta.scope`;

/**
 * A finish of the group: the job, the lease it was claimed under, the terminal status it gets, and
 * what it adds to the job's batch: the tokens of this attempt (null: none reported) and the model
 * it names (null: the job keeps its own).
 */
export interface CountedFinish {
	id: string;
	leaseToken: string | null;
	status: "succeeded" | "failed";
	inputTokens: number | null;
	outputTokens: number | null;
	model: string | null;
}

/**
 * The jobs a group of finishes will finish (processing under the lease each finish holds), with
 * what each finish changes of its batch's sums, as the trigger jobs_batch_counts reads them off
 * the row: the tokens it adds (shared/jobs/store.ts, ADD_USAGE), whether it is the job's first
 * usage, and the model a succeeded job ends with.
 */
const FINISHED = `finished(key, status, batch_id, input_tokens, output_tokens, first_usage, model) AS (
	SELECT j.key, json_extract(f.value, '$[2]'), j.batch_id, coalesce(json_extract(f.value, '$[3]'), 0),
		coalesce(json_extract(f.value, '$[4]'), 0),
		j.input_tokens IS NULL AND json_extract(f.value, '$[3]') IS NOT NULL,
		coalesce(json_extract(f.value, '$[5]'), j.model, (SELECT t.text FROM job_texts t WHERE t.id = j.model_id))
	FROM json_each(?1) f
	JOIN jobs j ON j.id = json_extract(f.value, '$[0]')
	WHERE j.status = 'processing' AND j.lease_token = json_extract(f.value, '$[1]')
)`;

/**
 * Each batch's changes from a group of finishes (their jobs leave `processing` for their terminal
 * status, add their tokens, and a succeeded one counts for its model; their completion numbers are
 * taken: `groupBatchSeq`), in one UPDATE of each batch row, as the triggers jobs_batch_counts,
 * jobs_batch_models and jobs_batch_seq_update would make them job by job.
 */
const FINISHED_BATCHES = `WITH ${FINISHED},
	moved AS MATERIALIZED (
		SELECT batch_id, count(*) AS n, sum(status = 'succeeded') AS s, sum(status = 'failed') AS f,
			sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(first_usage) AS first_usage,
			sum(status = 'succeeded' AND model IS NOT NULL) AS modelled
		FROM finished WHERE batch_id IS NOT NULL GROUP BY batch_id
	)
	UPDATE batches SET processing = processing - moved.n, succeeded = succeeded + moved.s, failed = failed + moved.f,
		finished_seq = finished_seq + moved.n,
		input_tokens = batches.input_tokens + moved.input_tokens, output_tokens = batches.output_tokens + moved.output_tokens,
		jobs_with_usage = jobs_with_usage + moved.first_usage,
		models = CASE WHEN moved.modelled = 0 THEN models ELSE (
			SELECT json_group_object(model, n) FROM (
				SELECT model, sum(n) AS n FROM (
					SELECT e.key AS model, e.value AS n FROM json_each(batches.models) e
					UNION ALL SELECT model, count(*) FROM finished
					WHERE finished.batch_id = batches.id AND status = 'succeeded' AND model IS NOT NULL GROUP BY model
				) GROUP BY model
			)
		) END
	FROM moved WHERE batches.id = moved.batch_id`;

/**
 * The counts of a group of finishes (all at `now`): each job finished leaves `processing` for its
 * terminal status, and completes in the 30-second and 15-minute buckets of `now`.
 */
export function finishCountsStatements(
	db: D1Database,
	finishes: readonly CountedFinish[],
	now: number,
): D1PreparedStatement[] {
	const asks = countedFinishes(finishes);
	return [
		db.prepare(FINISHED_BATCHES).bind(asks),
		db
			.prepare(
				countMoves(
					FINISHED,
					`SELECT key, 'processing', -1 FROM finished UNION ALL SELECT key, status, 1 FROM finished`,
				),
			)
			.bind(asks),
		db
			.prepare(
				`WITH ${FINISHED}
				INSERT INTO job_completions (scope, bucket_seconds, start, completed, succeeded, failed)
				SELECT s.prefix, g.value, ?2 - ?2 % (g.value * 1000), count(*), sum(f.status = 'succeeded'),
					sum(f.status = 'failed')
				FROM finished f JOIN stat_scopes s ON substr(f.key, 1, length(s.prefix)) = s.prefix
				CROSS JOIN json_each('[30, 900]') g
				WHERE true
				GROUP BY s.prefix, g.value
				ON CONFLICT (scope, bucket_seconds, start) DO UPDATE SET completed = completed + excluded.completed,
					succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed`,
			)
			.bind(asks, now),
	];
}

/**
 * The counts of jobs a statement of the same transaction just inserted (their ids: the JSON array
 * `idsJson`; an id that does not exist adds nothing), each in its status, as the trigger
 * jobs_stats_insert would count them one by one. Jobs inserted unfinished only: they complete
 * nothing (the lister's pages, workers/consumer/batch-pages.ts).
 */
export function insertedCountsStatement(db: D1Database, idsJson: string): D1PreparedStatement {
	return db
		.prepare(
			countMoves(
				"made(key, status) AS (SELECT key, status FROM jobs WHERE id IN (SELECT value FROM json_each(?1)))",
				"SELECT key, status, 1 FROM made",
			),
		)
		.bind(idsJson);
}

/**
 * The asks of a group of finishes as its statements bind them (`?1` of finishCountsStatements; a
 * finish's own statement binds it too, for `groupBatchSeq`).
 */
export const countedFinishes = (finishes: readonly CountedFinish[]): string =>
	JSON.stringify(finishes.map((f) => [f.id, f.leaseToken, f.status, f.inputTokens, f.outputTokens, f.model]));

/**
 * The completion number of a batch job finished in a group (in the finish's own SET, `asks` the
 * group's countedFinishes): the batch's `finished_seq` was raised by the group's finishes of that
 * batch before them, and the finishes of the group not yet written (this one too) take the numbers
 * at its top, so the first written takes the lowest: finished_seq + 1 − (those still processing).
 * As the trigger jobs_batch_seq_update numbers one job at a time, with no gap and no repeat. The
 * group's asks are walked first (CROSS JOIN), each job found by id: not the batch's every job.
 */
export const groupBatchSeq = (asks: string) => `CASE WHEN batch_id IS NULL THEN batch_seq ELSE (
	SELECT b.finished_seq + 1 - (SELECT count(*) FROM json_each(${asks}) f CROSS JOIN jobs j2 ON j2.id = json_extract(f.value, '$[0]')
		WHERE j2.batch_id = b.id AND j2.status = 'processing' AND j2.lease_token = json_extract(f.value, '$[1]'))
	FROM batches b WHERE b.id = jobs.batch_id) END`;

/** A claim of the group: a job by id, or the notification job of an object version and options. */
export type CountedClaim =
	| { kind: "id"; id: string }
	| { kind: "version"; bucket: string; key: string; etag: string; optionsKey: string };

/**
 * The counts of a group of claims: a queued job it claims moves to `processing` (once, however many
 * claims name it), in the statistics and in its batch; an object version without a job gets one,
 * made `processing` (once per version and options). A processing job whose lease expired is
 * claimed again without a change of status.
 */
export function claimCountsStatements(db: D1Database, claims: readonly CountedClaim[]): D1PreparedStatement[] {
	const asks = JSON.stringify(
		claims.map((c) => (c.kind === "id" ? ["id", c.id] : ["version", c.bucket, c.key, c.etag, c.optionsKey])),
	);
	const v = (i: number) => `json_extract(c.value, '$[${i}]')`;
	const ctes = `asked AS (
		SELECT ${v(0)} AS kind, ${v(1)} AS id, ${v(1)} AS bucket, ${v(2)} AS key, ${v(3)} AS etag, ${v(4)} AS options_key
		FROM json_each(?1) c
	),
	target_ids(id) AS (
		SELECT a.id FROM asked a WHERE a.kind = 'id'
		UNION SELECT (SELECT id FROM jobs WHERE ${notificationJobOf("a.bucket", "a.key", "a.etag", "a.options_key")})
		FROM asked a WHERE a.kind = 'version'
	),
	targets AS (SELECT j.id, j.key, j.status, j.batch_id FROM target_ids t JOIN jobs j ON j.id = t.id),
	made AS (
		SELECT DISTINCT a.bucket, a.key, a.etag, a.options_key FROM asked a
		WHERE a.kind = 'version'
			AND NOT EXISTS (SELECT 1 FROM jobs WHERE ${notificationJobOf("a.bucket", "a.key", "a.etag", "a.options_key")})
	)`;
	const moves = `SELECT key, 'queued', -1 FROM targets WHERE status = 'queued'
		UNION ALL SELECT key, 'processing', 1 FROM targets WHERE status = 'queued'
		UNION ALL SELECT key, 'processing', 1 FROM made`;
	// A batch's queued jobs claimed move to its `processing` (a notification's job has no batch).
	const batches = `WITH ${ctes},
	moved AS MATERIALIZED (
		SELECT batch_id, count(*) AS n FROM targets WHERE status = 'queued' AND batch_id IS NOT NULL GROUP BY batch_id
	)
	UPDATE batches SET queued = queued - moved.n, processing = processing + moved.n FROM moved
	WHERE batches.id = moved.batch_id`;
	return [db.prepare(countMoves(ctes, moves)).bind(asks), db.prepare(batches).bind(asks)];
}
