/**
 * How caption versions are read (docs/data.md#captions). While its job exists, an `ai` version is
 * held by the job row (`jobs.caption_version`, migrations/0027_caption_once.sql): its text, model,
 * prompt, ETag and time are the job's `caption`, `model`, `prompt`, `etag` and `completed_at`, and
 * there is no `caption_versions` row for it. When the job is deleted or its values change, a trigger
 * writes that row first. Human versions, and those whose job is gone, are rows of `caption_versions`.
 * A job's model and prompt may be shared texts (shared/jobs/text-sql.ts). Plain SQL, no imports:
 * the migrations' tests read through these too (so jobText is restated here).
 */

/** A job's model or prompt as text, as shared/jobs/text-sql.ts's jobText. */
const jobText = (column: "model" | "prompt", alias = "") =>
	`coalesce(${alias}${column}, (SELECT t.text FROM job_texts t WHERE t.id = ${alias}${column}_id))`;

/** The columns of a version (CaptionVersionRow), in the order of `caption_versions`. */
const COLUMNS = "bucket, key, version, text, source, job_id, model, prompt, etag, created_at";

/** The versions that jobs hold, in the columns of `caption_versions`. */
const JOB_VERSIONS = `SELECT bucket, key, caption_version AS version, caption AS text, 'ai' AS source, id AS job_id,
	${jobText("model")} AS model, ${jobText("prompt")} AS prompt, etag, completed_at AS created_at FROM jobs`;

/** Every version of the object `bucket`, `key` (parameters or SQL values), newest first. */
export const objectVersions = (bucket: string, key: string): string =>
	`SELECT ${COLUMNS} FROM caption_versions WHERE bucket = ${bucket} AND key = ${key}
	UNION ALL
	${JOB_VERSIONS} WHERE key = ${key} AND bucket = ${bucket} AND caption_version IS NOT NULL
	ORDER BY version DESC`;

/**
 * The current version of each `captions c`: the `caption_versions` row `v`, or else the job `j`
 * that holds it (through jobs_key_created: a key has few jobs).
 */
export const CURRENT_VERSION_JOINS = `LEFT JOIN caption_versions v ON v.bucket = c.bucket AND v.key = c.key AND v.version = c.current
	LEFT JOIN jobs j ON v.version IS NULL AND j.key = c.key AND j.bucket = c.bucket AND j.caption_version = c.current`;

/** The current version's columns, from CURRENT_VERSION_JOINS. */
export const CURRENT_VERSION = {
	text: "coalesce(v.text, j.caption)",
	source: "coalesce(v.source, 'ai')",
	job_id: "CASE WHEN v.version IS NULL THEN j.id ELSE v.job_id END",
	model: `CASE WHEN v.version IS NULL THEN ${jobText("model", "j.")} ELSE v.model END`,
	prompt: `CASE WHEN v.version IS NULL THEN ${jobText("prompt", "j.")} ELSE v.prompt END`,
	etag: "coalesce(v.etag, j.etag)",
	created_at: "coalesce(v.created_at, j.completed_at)",
} as const;

/** The columns of an object's current caption (CurrentCaptionRow), from CURRENT_CAPTION_JOIN. */
export const CURRENT_CAPTION_COLUMNS = `c.bucket, c.key, c.current AS version, ${Object.entries(CURRENT_VERSION)
	.map(([name, sql]) => `${sql} AS ${name}`)
	.join(", ")}, c.versions, c.updated_at`;
export const CURRENT_CAPTION_JOIN = `captions c ${CURRENT_VERSION_JOINS}`;

/**
 * The caption version a finish with this status and caption gives its job: the next of its object
 * (the versions so far + 1) when it succeeds with a caption, NULL otherwise. In the finish's SET
 * (shared/jobs/store.ts), where `jobs` is the row it finishes and the trigger jobs_caption_version
 * has not yet counted it (migrations/0030_fewer_rows.sql).
 */
export const captionVersionOf = (status: string, caption: string) =>
	`CASE WHEN ${status} = 'succeeded' AND ${caption} IS NOT NULL THEN 1 + coalesce(
		(SELECT c.versions FROM captions c WHERE c.bucket = jobs.bucket AND c.key = jobs.key), 0) END`;
