/**
 * A delivery's attempt log. Attempt 1 is kept in its delivery's row (`attempt1_*`,
 * migrations/0027_caption_once.sql): nearly every delivery succeeds at its first attempt, and a
 * `webhook_attempts` row of its own cost about 57 bytes an image for what four columns hold. Later
 * attempts (retries, redeliveries) are rows of `webhook_attempts`, as every attempt was before.
 */

/**
 * SQL: every attempt of the deliveries whose ids `ids` selects (a subquery or `json_each` list),
 * in the columns of `webhook_attempts` (AttemptRow), by delivery then attempt.
 */
export const attemptsOf = (ids: string): string =>
	`SELECT delivery_id, attempt, started_at, status_code, duration_ms, error FROM webhook_attempts
	WHERE delivery_id IN (${ids})
	UNION ALL
	SELECT id AS delivery_id, 1 AS attempt, attempt1_started_at AS started_at, attempt1_status_code AS status_code,
		attempt1_duration_ms AS duration_ms, attempt1_error AS error
	FROM webhook_deliveries WHERE id IN (${ids}) AND attempt1_started_at IS NOT NULL
	ORDER BY delivery_id, attempt`;
