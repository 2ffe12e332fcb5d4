/**
 * The SQL of a job's model and prompt, which are stored once when shared (migrations/0028_texts_once.sql):
 * `job_texts` holds each shared text once, and a job refers to it by `model_id` / `prompt_id` with its
 * `model` / `prompt` NULL, or holds any other text itself (a custom prompt, a row older than the
 * table). Plain SQL, no imports: the migrations' tests read through these too.
 */

/** The text a job's `column` stands for (`alias`: the table's alias with its dot, e.g. `j.`). */
export const jobText = (column: "model" | "prompt", alias = "") =>
	`coalesce(${alias}${column}, (SELECT t.text FROM job_texts t WHERE t.id = ${alias}${column}_id))`;

/**
 * SET clauses that store `value` (an SQL expression; NULL keeps what the job has) in `column`: a
 * reference when the text is a shared one, else the text itself.
 */
export function setJobText(column: "model" | "prompt", value: string): string {
	const shared = `(SELECT t.id FROM job_texts t WHERE t.text = ${value})`;
	return `${column} = CASE WHEN ${value} IS NULL THEN ${column} WHEN ${shared} IS NULL THEN ${value} END,
		${column}_id = CASE WHEN ${value} IS NULL THEN ${column}_id ELSE ${shared} END`;
}

/** Makes the texts of the JSON array `?1` shared ones (a text already shared stays as it is). */
export const SHARE_TEXTS_SQL =
	"INSERT INTO job_texts (text) SELECT value FROM json_each(?1) WHERE true ON CONFLICT (text) DO NOTHING";
