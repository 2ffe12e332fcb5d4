/**
 * Presets: named options for every object under a key prefix (the longest matching prefix wins).
 * Explicit options and object metadata override a preset field by field (shared/jobs/options.ts).
 * The row stores each option in its text form (shared/outputs/spec.ts), like a job's row.
 */
import { z } from "zod";
import { MaxTokens, Prompt } from "../jobs/options";
import {
	Language,
	Output,
	OutputText,
	outputText,
	WriteBackSetting,
	WriteBackText,
	writeBackText,
} from "../outputs/spec";

export const PresetName = z
	.string()
	.regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "lowercase letters, digits, - and _, at most 64")
	.meta({ example: "shop-alt-text" });

export const PresetRow = z.object({
	name: z.string(),
	prefix: z.string(),
	output: z.string(),
	prompt: z.string().nullable(),
	language: z.string().nullable(),
	max_tokens: z.number().nullable(),
	write_back: z.string().nullable(),
	key_id: z.string().nullable(),
	created_at: z.number(),
});
export type PresetRow = z.infer<typeof PresetRow>;

export const Preset = z
	.object({
		name: PresetName,
		prefix: z.string().min(1).max(1024).meta({ example: "shop/" }),
		output: Output,
		prompt: Prompt.nullable(),
		language: Language.nullable(),
		max_tokens: MaxTokens.nullable(),
		write_back: z.object({ target: z.enum(["sidecar", "metadata"]), mode: z.enum(["overwrite", "skip"]) }).nullable(),
		created_at: z.iso.datetime(),
	})
	.meta({ id: "Preset" });
export type Preset = z.infer<typeof Preset>;

export const CreatePresetBody = z
	.strictObject({
		name: PresetName,
		prefix: z.string().min(1).max(1024),
		output: Output,
		prompt: Prompt.optional(),
		language: Language.optional(),
		max_tokens: MaxTokens.optional(),
		write_back: WriteBackSetting.optional(),
	})
	.meta({ id: "CreatePreset" });

export function toPreset(row: PresetRow): Preset {
	return {
		name: row.name,
		prefix: row.prefix,
		output: OutputText.parse(row.output),
		prompt: row.prompt,
		language: row.language,
		max_tokens: row.max_tokens,
		write_back: row.write_back === null ? null : WriteBackText.parse(row.write_back),
		created_at: new Date(row.created_at).toISOString(),
	};
}

/** The row of a preset being created. */
export function presetRow(body: z.output<typeof CreatePresetBody>, keyId: string | null, now: number): PresetRow {
	return {
		name: body.name,
		prefix: body.prefix,
		output: outputText(body.output),
		prompt: body.prompt ?? null,
		language: body.language ?? null,
		max_tokens: body.max_tokens ?? null,
		write_back: body.write_back === undefined ? null : writeBackText(body.write_back),
		key_id: keyId,
		created_at: now,
	};
}

/** The preset whose prefix is the longest that `key` starts with, or null. */
export function longestMatch<P extends { prefix: string }>(presets: readonly P[], key: string): P | null {
	let best: P | null = null;
	for (const p of presets) {
		if (key.startsWith(p.prefix) && (best === null || p.prefix.length > best.prefix.length)) best = p;
	}
	return best;
}
