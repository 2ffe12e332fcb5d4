/**
 * One notification job per object version and caption options. No unique index holds it (that
 * index cost about 100 bytes a job, docs/performance.md#capacity-d1-bytes-per-image): the inserts
 * of such a job say `WHERE NOT EXISTS` the row below in the same statement (D1 runs one statement
 * at a time), and the trigger `jobs_notification_once` (migrations/0027_caption_once.sql) refuses
 * any other insert of a second one.
 */

/**
 * The notification job of an object version made with these caption options (parameters or SQL
 * values): at most one row, found through `jobs_key_created` (a key has few jobs).
 */
export const notificationJobOf = (bucket: string, key: string, etag: string, optionsKey: string): string =>
	`key = ${key} AND bucket = ${bucket} AND etag = ${etag} AND source = 'notification' AND options_key = ${optionsKey}`;
