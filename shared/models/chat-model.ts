/**
 * Adapters for chat vision models (Text Generation) that take the image as a `data:` URL inside
 * `messages`: @cf/google/gemma-4-26b-a4b-it (OpenAI-style `choices`),
 * @cf/meta/llama-4-scout-17b-16e-instruct and @cf/mistralai/mistral-small-3.1-24b-instruct (`response`).
 */
import { z } from "zod";
import type { ImageLimits, ModelAdapter, ModelImage, ModelRequest } from "./types";

const Output = z.union([
	z.object({ response: z.string() }),
	z.object({ choices: z.array(z.object({ message: z.object({ content: z.string() }) })).min(1) }),
]);

const CHAT_LIMITS: ImageLimits = { maxBytes: 1024 * 1024, maxSide: 1536 };

export function toDataUrl(image: ModelImage): string {
	// btoa needs a binary string; build it in chunks to keep the call stack and copies small.
	let binary = "";
	const CHUNK = 0x8000;
	for (let i = 0; i < image.bytes.length; i += CHUNK) {
		binary += String.fromCharCode(...image.bytes.subarray(i, i + CHUNK));
	}
	return `data:${image.info.mime};base64,${btoa(binary)}`;
}

/** `extra` goes into every request, e.g. gemma-4's switch that stops it spending tokens on thinking. */
export function chatVisionModel(id: string, extra: Record<string, unknown> = {}): ModelAdapter {
	return {
		id,
		task: "Text Generation",
		limits: CHAT_LIMITS,
		buildInput(image: ModelImage, request: ModelRequest) {
			return {
				messages: [
					{
						role: "user",
						content: [
							{ type: "text", text: request.prompt },
							{ type: "image_url", image_url: { url: toDataUrl(image) } },
						],
					},
				],
				max_tokens: request.maxTokens,
				...extra,
			};
		},
		readCaption(output: unknown) {
			const parsed = Output.parse(output);
			return "response" in parsed ? parsed.response : (parsed.choices[0]?.message.content ?? "");
		},
	};
}

export const gemma4 = chatVisionModel("@cf/google/gemma-4-26b-a4b-it", {
	chat_template_kwargs: { enable_thinking: false },
});
export const llama4Scout = chatVisionModel("@cf/meta/llama-4-scout-17b-16e-instruct");
export const mistralSmall31 = chatVisionModel("@cf/mistralai/mistral-small-3.1-24b-instruct");
