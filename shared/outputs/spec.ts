/**
 * What a job produces and where it goes: the output kind (`caption`, `alt_text`, `tags`, `title`
 * or a JSON Schema the result must satisfy), the language it is written in (a BCP 47 tag) and the
 * write-back (a sidecar object or the image's own metadata). Each has an object form (API bodies)
 * and a text form (headers, custom metadata and D1 columns); both parse to the same value here.
 */
import { z } from "zod";

export const TEXT_OUTPUT_KINDS = ["caption", "alt_text", "tags", "title"] as const;
export const OUTPUT_KINDS = [...TEXT_OUTPUT_KINDS, "json_schema"] as const;
export const OutputKind = z.enum(OUTPUT_KINDS).meta({ id: "OutputKind" });
export type OutputKind = z.infer<typeof OutputKind>;

/** Largest JSON Schema a job may carry, as UTF-8 JSON text. */
export const MAX_JSON_SCHEMA_BYTES = 16 * 1024;

const byteLength = (text: string) => new TextEncoder().encode(text).byteLength;

const JsonSchemaOutput = z.strictObject({
	json_schema: z
		.record(z.string(), z.unknown())
		.refine((schema) => byteLength(JSON.stringify(schema)) <= MAX_JSON_SCHEMA_BYTES, {
			message: `The JSON Schema may be at most ${MAX_JSON_SCHEMA_BYTES} bytes`,
		})
		.meta({ description: "A JSON Schema (draft 2020-12 unless its `$schema` says otherwise)." }),
});

/** The object form: a text kind's name, or `{ "json_schema": { … } }`. */
export const Output = z
	.union([z.enum(TEXT_OUTPUT_KINDS), JsonSchemaOutput])
	.meta({ id: "Output", description: "`caption` (default), `alt_text`, `tags`, `title` or `{ json_schema }`." });
export type Output = z.infer<typeof Output>;

export const outputKind = (output: Output): OutputKind => (typeof output === "string" ? output : "json_schema");

/** The text form: the kind's name, or the `{ "json_schema": … }` object as JSON text. */
export function outputText(output: Output): string {
	return typeof output === "string" ? output : JSON.stringify(output);
}

/** Parses the text form (a header, a metadata value or a column). */
export const OutputText = z.string().transform((text, ctx): Output => {
	let value: unknown = text.trim();
	if (text.trim().startsWith("{")) {
		try {
			value = JSON.parse(text);
		} catch {
			ctx.addIssue({ code: "custom", message: "not valid JSON" });
			return z.NEVER;
		}
	}
	const parsed = Output.safeParse(value);
	if (parsed.success) return parsed.data;
	ctx.addIssue({
		code: "custom",
		message: `must be one of ${TEXT_OUTPUT_KINDS.join(", ")} or {"json_schema": {…}}: ${parsed.error.issues[0]?.message}`,
	});
	return z.NEVER;
});

/** ISO 639 codes that name no language a caption can be written in. */
const NO_LANGUAGE = new Set(["und", "mul", "mis", "zxx"]);
/** The languages ICU knows by name (`fallback: "none"`: undefined for a code it does not know). */
const languageNames = new Intl.DisplayNames(["en"], { type: "language", fallback: "none" });

const LANGUAGE_TAG_MESSAGE =
	"must be a BCP 47 language tag starting with an ISO 639 language code, such as en, de, pt-BR or zh-Hant-TW";

let codesByName: Map<string, string> | undefined;
/**
 * The two-letter code of a language named in English (`English`, `german`), or undefined: such a
 * name was taken as a tag before tags had to start with a language code, and presets, batches and
 * object metadata may hold one, so it still means its language.
 */
function codeOfName(name: string): string | undefined {
	if (!codesByName) {
		codesByName = new Map();
		for (const a of "abcdefghijklmnopqrstuvwxyz") {
			for (const b of "abcdefghijklmnopqrstuvwxyz") {
				const named = languageNames.of(a + b)?.toLowerCase();
				// The code as a tag is canonicalised (mo → ro, ji → yi, tl → fil): the name gets that.
				if (named !== undefined && !codesByName.has(named))
					codesByName.set(named, Intl.getCanonicalLocales(a + b)[0] ?? a + b);
			}
		}
	}
	return codesByName.get(name.toLowerCase());
}

/**
 * A BCP 47 language tag, canonicalised (`pt-br` → `pt-BR`), whose primary subtag is an ISO 639
 * language code (2 or 3 letters) that names a language: `xx` or `english` as a tag would reach a
 * model as a language it cannot know. A language's English name (`English`, `German`) is taken as
 * its code (`en`, `de`).
 */
export const Language = z
	.string()
	.trim()
	.min(2)
	.max(35)
	.transform((tag, ctx) => {
		let canonical: string | undefined = codeOfName(tag);
		try {
			canonical ??= Intl.getCanonicalLocales(tag)[0];
		} catch {}
		const primary = canonical?.split("-")[0] ?? "";
		if (
			canonical !== undefined &&
			/^[a-z]{2,3}$/.test(primary) &&
			!NO_LANGUAGE.has(primary) &&
			languageNames.of(primary) !== undefined
		) {
			return canonical;
		}
		ctx.addIssue({ code: "custom", message: LANGUAGE_TAG_MESSAGE });
		return z.NEVER;
	})
	.meta({ description: "A BCP 47 language tag, e.g. `de` or `pt-BR`.", example: "de" });

/** Whether a tag asks for English (no language, or any `en` tag): every model writes it. */
export const isEnglish = (language: string | null): boolean => language === null || /^en(-|$)/i.test(language);

export const WRITE_BACK_TARGETS = ["sidecar", "metadata"] as const;
export const WRITE_BACK_MODES = ["overwrite", "skip"] as const;
const Target = z.enum(WRITE_BACK_TARGETS);
const Mode = z.enum(WRITE_BACK_MODES);

export interface WriteBack {
	target: (typeof WRITE_BACK_TARGETS)[number];
	mode: (typeof WRITE_BACK_MODES)[number];
}

/** The object form: `"sidecar"`, `"metadata"` or `{ "target", "mode" }` (mode `overwrite` by default). */
export const WriteBackSetting = z
	.union([Target, z.strictObject({ target: Target, mode: Mode.default("overwrite") })])
	.transform((v): WriteBack => (typeof v === "string" ? { target: v, mode: "overwrite" } : v))
	.meta({
		id: "WriteBackSetting",
		description:
			"`sidecar` (a `.txt`/`.json` object next to the image) or `metadata` (the image's custom metadata), or `{ target, mode }` with mode `overwrite` (default) or `skip`.",
	});

export const writeBackText = (w: WriteBack): string => `${w.target}:${w.mode}`;

/** Parses the text form: `sidecar`, `metadata`, or either followed by `:overwrite` or `:skip`. */
export const WriteBackText = z.string().transform((text, ctx): WriteBack => {
	const [target, mode = "overwrite", ...rest] = text.trim().split(":");
	const parsed = z.strictObject({ target: Target, mode: Mode }).safeParse({ target, mode });
	if (parsed.success && rest.length === 0) return parsed.data;
	ctx.addIssue({ code: "custom", message: "must be sidecar or metadata, optionally followed by :overwrite or :skip" });
	return z.NEVER;
});
