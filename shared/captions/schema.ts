/**
 * Captions as a managed asset (docs/data.md#captions): the versions of an object's caption, its
 * current caption, and their public JSON. A succeeded job adds an `ai` version (a trigger on `jobs`,
 * migrations/0020), a person adds a `human` one; the current caption is the newest version, except
 * that a human version stays current until a job asked to `overwrite_human` succeeds.
 */
import { z } from "zod";
import { iso } from "../iso";

export const CAPTION_SOURCES = ["ai", "human"] as const;
export const CaptionSource = z.enum(CAPTION_SOURCES);

/**
 * A version as D1 returns it: a row of `caption_versions`, or the version a job holds
 * (shared/captions/version-sql.ts, migrations/0027) in the same columns.
 */
export const CaptionVersionRow = z.object({
	bucket: z.string(),
	key: z.string(),
	version: z.number().int(),
	text: z.string(),
	source: CaptionSource,
	job_id: z.string().nullable(),
	model: z.string().nullable(),
	prompt: z.string().nullable(),
	etag: z.string(),
	created_at: z.number().int(),
});
export type CaptionVersionRow = z.infer<typeof CaptionVersionRow>;

/** An object's current version joined with its `captions` row. */
export const CurrentCaptionRow = CaptionVersionRow.extend({
	versions: z.number().int(),
	updated_at: z.number().int(),
});
export type CurrentCaptionRow = z.infer<typeof CurrentCaptionRow>;

const isoTime = z.iso.datetime();

export const Caption = z
	.object({
		key: z.string().meta({ example: "photos/cat.jpg" }),
		etag: z.string().meta({ description: "The object version the current caption describes." }),
		text: z.string(),
		source: CaptionSource.meta({
			description: "`ai`: a job's caption; `human`: written with `PUT /v1/captions/{key}`.",
		}),
		job_id: z.string().nullable().meta({ description: "The job that made it; null for a human version." }),
		model: z.string().nullable().meta({ description: "The model that made it; null for a human version." }),
		prompt: z.string().nullable(),
		versions: z.number().int().meta({ description: "How many versions the object's caption has." }),
		updated_at: isoTime.meta({ description: "When this caption became current." }),
	})
	.meta({ id: "Caption" });
export type Caption = z.infer<typeof Caption>;

export const CaptionVersion = z
	.object({
		version: z.number().int().meta({ description: "1 for the first caption of the object, then 2, 3, …" }),
		text: z.string(),
		source: CaptionSource,
		job_id: z.string().nullable(),
		model: z.string().nullable(),
		prompt: z.string().nullable(),
		created_at: isoTime,
	})
	.meta({ id: "CaptionVersion" });
export type CaptionVersion = z.infer<typeof CaptionVersion>;

export const CaptionWithHistory = Caption.extend({
	history: z.array(CaptionVersion).meta({ description: "Every version, newest first." }),
}).meta({ id: "CaptionWithHistory" });
export type CaptionWithHistory = z.infer<typeof CaptionWithHistory>;

const isoOf = (ms: number): string => iso(ms) ?? "";

export function toCaption(row: CurrentCaptionRow): Caption {
	return {
		key: row.key,
		etag: row.etag,
		text: row.text,
		source: row.source,
		job_id: row.job_id,
		model: row.model,
		prompt: row.prompt,
		versions: row.versions,
		updated_at: isoOf(row.updated_at),
	};
}

export function toCaptionVersion(row: CaptionVersionRow): CaptionVersion {
	return {
		version: row.version,
		text: row.text,
		source: row.source,
		job_id: row.job_id,
		model: row.model,
		prompt: row.prompt,
		created_at: isoOf(row.created_at),
	};
}
