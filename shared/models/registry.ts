/** The model adapters the product knows, by Workers AI model id. */
import { llava15, uformGen2 } from "./byte-array-model";
import { gemma4, llama4Scout } from "./chat-model";
import type { ModelAdapter } from "./types";

export const ADAPTERS: ReadonlyMap<string, ModelAdapter> = new Map(
	[uformGen2, llava15, llama4Scout, gemma4].map((a) => [a.id, a]),
);

export const DEFAULT_MODEL_CHAIN = [uformGen2.id, llava15.id, llama4Scout.id, gemma4.id];

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
