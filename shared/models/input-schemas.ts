/**
 * What Workers AI publishes about each vision model the product knows: its task type (which sets
 * its rate limit), its input schema as a zod schema, and the shape of its answer. The emulator
 * validates every request against these, so a request the real service would refuse fails locally
 * too. Sources: cloudflare-docs `src/content/workers-ai-models/<model>.json`; the reference copies
 * and notes are in `../shared/models/` beside the repository.
 */
import { z } from "zod";
import type { UsageReport } from "./usage";

export const MODEL_TASKS = ["Image-to-Text", "Text Generation"] as const;
export type ModelTask = (typeof MODEL_TASKS)[number];

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

/** Sampling options every chat model of the catalog shares. */
const chatOptions = {
	max_tokens: z.number().int().positive().optional(),
	temperature: z.number().min(0).max(5).optional(),
	top_p: z.number().min(0).max(2).optional(),
	top_k: z.number().int().min(1).max(50).optional(),
	seed: z.number().int().min(1).max(9_999_999_999).optional(),
	repetition_penalty: z.number().min(0).max(2).optional(),
	frequency_penalty: z.number().min(0).max(2).optional(),
	presence_penalty: z.number().min(0).max(2).optional(),
	raw: z.boolean().optional(),
};

/**
 * Chat vision models that take the image as a `data:` URL inside `messages` (gemma-4, llama-4-scout,
 * mistral-small-3.1, gemma-3-12b): the part of their schema the product uses. `stream` must be
 * false or absent, since the product reads one JSON answer.
 */
const ChatVisionInput = z.object({
	messages: z.array(ChatMessage).min(1),
	...chatOptions,
	stream: z.literal(false).optional(),
	chat_template_kwargs: z.object({ enable_thinking: z.boolean().optional() }).optional(),
	// Structured output, where the model's page documents it (llama-4-scout, gemma-4; mistral: guided_json).
	response_format: z
		.object({ type: z.enum(["json_object", "json_schema"]), json_schema: z.record(z.string(), z.unknown()).optional() })
		.optional(),
	guided_json: z.record(z.string(), z.unknown()).optional(),
});

const ImageBytes = z.union([z.array(z.number().int().min(0).max(255)), z.string()]);

/**
 * llama-3.2-11b-vision-instruct: the image goes beside the text as bytes (`image`), with either a
 * `prompt` or `messages` whose content is a string.
 */
const Llama32VisionInput = z.union([
	z.strictObject({
		prompt: z.string().min(1).max(131_072),
		image: ImageBytes.optional(),
		stream: z.boolean().optional(),
		lora: z.string().optional(),
		...chatOptions,
	}),
	z.strictObject({
		messages: z.array(z.strictObject({ role: z.string(), content: z.string().max(131_072) })).min(1),
		image: ImageBytes.optional(),
		stream: z.boolean().optional(),
		...chatOptions,
	}),
]);

/**
 * moondream3.1-9B-A2B (Image-to-Text): one skill per request, chosen by `task`. The image is a public
 * HTTPS URL or a base64 data URI, required for every task but `query`.
 */
const MoondreamInput = z
	.strictObject({
		task: z.enum(["query", "caption", "point", "detect"]).default("query"),
		image: z
			.string()
			.regex(/^(https:\/\/|data:[-\w.+]+\/[-\w.+]+;base64,)/, "image must be an HTTPS URL or a base64 data URI")
			.optional(),
		question: z.string().optional(),
		caption_length: z.enum(["short", "normal", "long"]).optional(),
		target: z.string().optional(),
		reasoning: z.boolean().optional(),
		temperature: z.number().min(0).max(2).optional(),
		top_p: z.number().min(0).max(1).optional(),
		max_tokens: z.number().int().min(1).max(2048).optional(),
		max_objects: z.number().int().min(1).max(500).optional(),
		stream: z.boolean().optional(),
	})
	.refine((input) => input.task === "query" || input.image !== undefined, {
		path: ["image"],
		message: "image is required for the caption, point and detect tasks",
	});

/** How a model answers: `description`, `response`, OpenAI-style `choices`, or moondream's `caption`/`answer`. */
export type OutputStyle = "description" | "response" | "choices" | "moondream";

export interface PublishedModel {
	task: ModelTask;
	input: z.ZodType;
	output: OutputStyle;
	/** Where its answer reports tokens: `usage`, moondream's `metrics`, or `none` (./usage.ts). */
	usage: UsageReport;
}

export const PUBLISHED_MODELS: ReadonlyMap<string, PublishedModel> = new Map<string, PublishedModel>([
	[
		"@cf/unum/uform-gen2-qwen-500m",
		{ task: "Image-to-Text", input: ByteArrayImageInput, output: "description", usage: "none" },
	],
	[
		"@cf/llava-hf/llava-1.5-7b-hf",
		{ task: "Image-to-Text", input: ByteArrayImageInput, output: "description", usage: "none" },
	],
	[
		"@cf/moondream/moondream3.1-9B-A2B",
		{ task: "Image-to-Text", input: MoondreamInput, output: "moondream", usage: "metrics" },
	],
	[
		"@cf/google/gemma-4-26b-a4b-it",
		{ task: "Text Generation", input: ChatVisionInput, output: "choices", usage: "usage" },
	],
	[
		"@cf/meta/llama-4-scout-17b-16e-instruct",
		{ task: "Text Generation", input: ChatVisionInput, output: "response", usage: "usage" },
	],
	[
		"@cf/mistralai/mistral-small-3.1-24b-instruct",
		{ task: "Text Generation", input: ChatVisionInput, output: "response", usage: "usage" },
	],
	[
		"@cf/meta/llama-3.2-11b-vision-instruct",
		{ task: "Text Generation", input: Llama32VisionInput, output: "response", usage: "none" },
	],
	// Retired on Workers AI; known here so that the emulator can play it alive when asked to.
	[
		"@cf/google/gemma-3-12b-it",
		{ task: "Text Generation", input: ChatVisionInput, output: "response", usage: "usage" },
	],
]);
