/**
 * The SQL of a job's texts that are stored once when shared (migrations/0028_texts_once.sql): its
 * model, prompt, content type and output. `job_texts` holds each shared text once, and a job refers
 * to it by `<column>_id` with `<column>` NULL, or holds any other text itself (a custom prompt, a
 * JSON schema, a row older than the table). Plain SQL, no imports: the migrations' tests read
 * through these too.
 */

/** The job columns whose texts may be shared. */
export const SHARED_TEXT_COLUMNS = ["model", "prompt", "content_type", "output"] as const;
export type SharedTextColumn = (typeof SHARED_TEXT_COLUMNS)[number];

/** The text a job's `column` stands for (`alias`: the table's alias with its dot, e.g. `j.`). */
export const jobText = (column: SharedTextColumn, alias = "") =>
	`coalesce(${alias}${column}, (SELECT t.text FROM job_texts t WHERE t.id = ${alias}${column}_id))`;

/**
 * SET clauses that store `value` (an SQL expression; NULL keeps what the job has) in `column`: a
 * reference when the text is a shared one, else the text itself.
 */
export function setJobText(column: SharedTextColumn, value: string): string {
	const shared = `(SELECT t.id FROM job_texts t WHERE t.text = ${value})`;
	return `${column} = CASE WHEN ${value} IS NULL THEN ${column} WHEN ${shared} IS NULL THEN ${value} END,
		${column}_id = CASE WHEN ${value} IS NULL THEN ${column}_id ELSE ${shared} END`;
}

/** Makes the texts of the JSON array `?1` shared ones (a text already shared stays as it is). */
export const SHARE_TEXTS_SQL =
	"INSERT INTO job_texts (text) SELECT value FROM json_each(?1) WHERE true ON CONFLICT (text) DO NOTHING";
