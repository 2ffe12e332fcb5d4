/**
 * A job's event is keyed by its job (migrations/0028_texts_once.sql): its id is the job's with the
 * `evt_` prefix (`job_01J…` → `evt_01J…`), so the event's primary key finds it from the job and the
 * job from it, and the row holds no `job_id` (nor an index of it). Events recorded before 0028 keep
 * their own ids and their `job_id`. Plain SQL, no imports: the migrations' tests read through these.
 */

/** The id of job `jobId`'s event. Only a `job_` id maps one to one (every job is made with one). */
export const jobEventId = (jobId: string): string => {
	if (!jobId.startsWith("job_")) throw new Error(`a job id starts with job_: ${jobId}`);
	return `evt_${jobId.slice("job_".length)}`;
};

/** SQL: the job of event `alias` (`e.`), or NULL for a batch's or a caption's event. */
export const eventJobId = (alias = ""): string =>
	`coalesce(${alias}job_id, CASE WHEN ${alias}type IN ('job.succeeded', 'job.failed') THEN 'job_' || substr(${alias}id, 5) END)`;

/** SQL: whether event `alias` is the event of the job whose id is the SQL value `jobId`. */
export const isEventOfJob = (alias: string, jobId: string): string =>
	`(${alias}id = 'evt_' || substr(${jobId}, 5) OR ${alias}job_id = ${jobId})`;
