/**
 * How a caption version is read (docs/data.md#captions). An `ai` version whose job still exists
 * keeps no copy of what the job row holds, its text, model, prompt and ETag (NULL in
 * `caption_versions`, migrations/0027_caption_once.sql): they are read from the job, joined by its
 * primary key. When the job is deleted or its values change, a trigger copies them into the version
 * first. Plain SQL, no imports: the migration's test reads through these too.
 */

/** A version `v`'s columns, those of its job `j` while the version keeps no copy of them. */
export const VERSION_COLUMNS = `v.bucket, v.key, v.version, coalesce(v.text, j.caption) AS text, v.source, v.job_id,
	CASE WHEN v.text IS NULL THEN j.model ELSE v.model END AS model,
	CASE WHEN v.text IS NULL THEN j.prompt ELSE v.prompt END AS prompt,
	coalesce(v.etag, j.etag) AS etag, v.created_at`;

/** The job of a version `v` that keeps no copy of it. */
export const VERSION_JOB_JOIN = "LEFT JOIN jobs j ON v.text IS NULL AND j.id = v.job_id";

/** The columns of an object's current caption, from `captions c` joined with its current version `v`. */
export const CURRENT_CAPTION_COLUMNS = `${VERSION_COLUMNS}, c.versions, c.updated_at`;
export const CURRENT_CAPTION_JOIN = `captions c JOIN caption_versions v ON v.bucket = c.bucket AND v.key = c.key
	AND v.version = c.current ${VERSION_JOB_JOIN}`;
