/**
 * Jobs read with their shared texts as texts, and the texts jobs share. Model names, the default
 * prompt, content types and output kinds are stored once (`job_texts`, shared/jobs/text-sql.ts):
 * every read of a whole job goes through JOB_COLUMNS / jobColumns, which give `model`, `prompt`,
 * `content_type` and `output` back as texts, so a JobRow never sees how they are stored.
 */
import { errorMessage, log } from "../log";
import { JobRow } from "./schema";
import { jobText, SHARE_TEXTS_SQL, SHARED_TEXT_COLUMNS, type SharedTextColumn } from "./text-sql";

const isShared = (column: string): column is SharedTextColumn =>
	(SHARED_TEXT_COLUMNS as readonly string[]).includes(column);

/** The columns of a JobRow from `jobs` (`alias`: its alias with the dot, e.g. `j.`): use instead of `*`. */
export const jobColumns = (alias = ""): string =>
	Object.keys(JobRow.shape)
		.map((column) => (isShared(column) ? `${jobText(column, alias)} AS ${column}` : `${alias}${column}`))
		.join(", ");

/** jobColumns of the `jobs` table itself (SELECT … FROM jobs, RETURNING …). */
export const JOB_COLUMNS = jobColumns();

/** The texts this isolate knows to be in `job_texts` (a row there is never deleted). */
const known = new Set<string>();

/**
 * Makes `texts` shared ones (model names, the default prompt, content types, output kinds) before a job stores them: one row per
 * text for the table's lifetime, and a D1 call only for a text this isolate has not seen yet. A job
 * that stores a text not shared (yet) holds it itself, so nothing depends on this having run: a
 * failure is logged and the job goes on.
 */
export async function shareJobTexts(db: D1Database, texts: (string | null | undefined)[]): Promise<void> {
	const missing = [...new Set(texts)].filter((t): t is string => typeof t === "string" && !known.has(t));
	if (missing.length === 0) return;
	try {
		await db.prepare(SHARE_TEXTS_SQL).bind(JSON.stringify(missing)).run();
		for (const t of missing) known.add(t);
	} catch (error) {
		log("warn", "job_texts_not_shared", { texts: missing.length, reason: errorMessage(error) });
	}
}
