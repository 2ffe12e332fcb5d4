/**
 * Re-captioning by rule (docs/batches.md#re-caption-and-retry-by-filter): which objects a batch with `recaption` leaves
 * alone. An object is skipped when its current caption was made by one of `unless_model`, is newer
 * than `older_than`, or is a person's (unless `overwrite_human`); an object without a caption, or
 * whose current caption none of these rules keeps, gets a job.
 */
import { z } from "zod";
import { parseRows } from "../d1-rows";
import { CURRENT_VERSION, CURRENT_VERSION_JOINS } from "./version-sql";

export const Recaption = z
	.strictObject({
		unless_model: z
			.array(z.string().min(1).max(128))
			.max(32)
			.default([])
			.meta({
				description: "Skip objects whose current caption one of these models made.",
				example: ["@cf/llava-hf/llava-1.5-7b-hf"],
			}),
		older_than: z.iso
			.datetime({ offset: true })
			.optional()
			.meta({ description: "Skip objects whose current caption was made after this time." }),
		overwrite_human: z.boolean().default(false).meta({
			description:
				"Re-caption objects whose current caption a person wrote too (by default they are skipped), and make the new caption current.",
		}),
	})
	.meta({ id: "Recaption" });
export type Recaption = z.infer<typeof Recaption>;

/** What the rules look at of an object's current caption. */
export const CurrentCaptionFacts = z.object({
	key: z.string(),
	job_id: z.string().nullable(),
	model: z.string().nullable(),
	source: z.enum(["ai", "human"]),
	created_at: z.number().int(),
});
export type CurrentCaptionFacts = z.infer<typeof CurrentCaptionFacts>;

/** Whether `rules` leave this current caption as it is. */
export function keepsCaption(rules: Recaption, current: CurrentCaptionFacts): boolean {
	if (current.source === "human" && !rules.overwrite_human) return true;
	if (current.model !== null && rules.unless_model.includes(current.model)) return true;
	return rules.older_than !== undefined && current.created_at > Date.parse(rules.older_than);
}

/** The current captions of `keys` (those that have one), one primary-key lookup per key. */
export async function currentCaptionsOf(
	db: D1Database,
	bucket: string,
	keys: string[],
): Promise<CurrentCaptionFacts[]> {
	if (keys.length === 0) return [];
	return db
		.prepare(
			`SELECT c.key, ${CURRENT_VERSION.job_id} AS job_id, ${CURRENT_VERSION.model} AS model,
				${CURRENT_VERSION.source} AS source, ${CURRENT_VERSION.created_at} AS created_at
			FROM json_each(?1) p CROSS JOIN captions c ON c.bucket = ?2 AND c.key = p.value ${CURRENT_VERSION_JOINS}`,
		)
		.bind(JSON.stringify(keys), bucket)
		.all()
		.then(parseRows(CurrentCaptionFacts));
}

/** For each object the rules skip, the job of its current caption (null: a person's). */
export async function recaptionSkips(
	db: D1Database,
	bucket: string,
	rules: Recaption,
	keys: string[],
): Promise<Map<string, string | null>> {
	const current = await currentCaptionsOf(db, bucket, keys);
	return new Map(current.filter((c) => keepsCaption(rules, c)).map((c) => [c.key, c.job_id]));
}
