/**
 * The published Workers AI input schemas of the supported vision models, as zod schemas. The
 * emulator validates every request against them, so a request the real service would refuse
 * fails locally too. Sources: cloudflare-docs `src/content/workers-ai-models/<model>.json`.
 */
import { z } from "zod";

/** uform-gen2-qwen-500m and llava-1.5-7b-hf: `{ image: number[] | binary string, prompt?, ... }`. */
const ByteArrayImageInput = z.union([
	z.string(),
	z.strictObject({
		temperature: z.number().optional(),
		prompt: z.string().optional(),
		raw: z.boolean().optional(),
		image: z.union([z.array(z.number().int().min(0).max(255)), z.string()]),
		max_tokens: z.number().int().optional(),
	}),
]);

const TextPart = z.strictObject({ type: z.literal("text"), text: z.string() });
const ImagePart = z.strictObject({
	type: z.literal("image_url"),
	// Only data: URLs are accepted for images; HTTP URLs are refused.
	image_url: z.strictObject({
		url: z.string().regex(/^data:image\/[a-z+.-]+;base64,/, "image_url must be a data: URL"),
	}),
});
const ChatMessage = z.strictObject({
	role: z.enum(["system", "user", "assistant"]),
	content: z.union([z.string(), z.array(z.union([TextPart, ImagePart])).min(1)]),
});

/** Chat vision models (gemma-4, llama-4-scout): the part of their schema the product uses. */
const ChatVisionInput = z.object({
	messages: z.array(ChatMessage).min(1),
	max_tokens: z.number().int().positive().optional(),
	temperature: z.number().optional(),
	top_p: z.number().optional(),
	top_k: z.number().int().optional(),
	seed: z.number().int().optional(),
	repetition_penalty: z.number().optional(),
	stream: z.literal(false).optional(),
	chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).optional(),
});

export const MODEL_INPUT_SCHEMAS: ReadonlyMap<string, z.ZodType> = new Map<string, z.ZodType>([
	["@cf/unum/uform-gen2-qwen-500m", ByteArrayImageInput],
	["@cf/llava-hf/llava-1.5-7b-hf", ByteArrayImageInput],
	["@cf/google/gemma-4-26b-a4b-it", ChatVisionInput],
	["@cf/meta/llama-4-scout-17b-16e-instruct", ChatVisionInput],
]);

/** How each model answers: `description`, `response`, or OpenAI-style `choices`. */
export const MODEL_OUTPUT_STYLE: ReadonlyMap<string, "description" | "response" | "choices"> = new Map([
	["@cf/unum/uform-gen2-qwen-500m", "description"],
	["@cf/llava-hf/llava-1.5-7b-hf", "description"],
	["@cf/google/gemma-4-26b-a4b-it", "choices"],
	["@cf/meta/llama-4-scout-17b-16e-instruct", "response"],
] as const);
