/** The model adapters the product knows, by Workers AI model id, and the default fallback chain. */
import { z } from "zod";
import { llama32Vision, llava15, uformGen2 } from "./byte-array-model";
import { gemma4, llama4Scout, mistralSmall31 } from "./chat-model";
import { moondream31 } from "./moondream";
import type { ModelAdapter } from "./types";

export const ADAPTERS: ReadonlyMap<string, ModelAdapter> = new Map(
	[uformGen2, llava15, moondream31, llama4Scout, gemma4, mistralSmall31, llama32Vision].map((a) => [a.id, a]),
);

/**
 * Live captioning models first (moondream3.1 and llava-1.5, Image-to-Text: 720 requests per
 * minute), then chat models (Text Generation: 300 per minute). uform-gen2, retired on 2026-05-30,
 * is not in it; llama-3.2-11b-vision is last because it needs its licence accepted once (5016).
 */
export const DEFAULT_MODEL_CHAIN = [
	moondream31.id,
	llava15.id,
	llama4Scout.id,
	mistralSmall31.id,
	gemma4.id,
	llama32Vision.id,
];

/** Parses the MODEL_CHAIN setting (comma-separated ids); unknown ids are a configuration error. */
export function parseModelChain(setting: string | undefined): ModelAdapter[] {
	const ids = (setting ?? "")
		.split(",")
		.map((s) => s.trim())
		.filter(Boolean);
	return (ids.length > 0 ? ids : DEFAULT_MODEL_CHAIN).map((id) => {
		const adapter = ADAPTERS.get(id);
		if (!adapter)
			throw new Error(`MODEL_CHAIN names an unknown model: ${id} (known: ${[...ADAPTERS.keys()].join(", ")})`);
		return adapter;
	});
}

/** MODEL_CHAIN as a zod setting, so each Worker reads it with the rest of its settings. */
export const ModelChainSetting = z
	.string()
	.optional()
	.transform((setting, ctx) => {
		try {
			return parseModelChain(setting);
		} catch (err) {
			ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
			return z.NEVER;
		}
	});
