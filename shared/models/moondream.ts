/**
 * Adapter for @cf/moondream/moondream3.1-9B-A2B (Image-to-Text), which runs one skill per request:
 * `task: "caption"` (with `caption_length`) for the service's default caption prompt, or
 * `task: "query"` with the job's own prompt as the `question`. Streaming is on by default for both
 * skills, so every request says `stream: false` to get one JSON answer: `caption` or `answer`.
 */
import { z } from "zod";
import { toDataUrl } from "./chat-model";
import type { ModelAdapter, ModelImage, ModelRequest } from "./types";

const Output = z.union([z.object({ caption: z.string() }), z.object({ answer: z.string() })]);

/** The caption length that fits a token budget: a sentence for small budgets, a paragraph for large. */
export function captionLength(maxTokens: number): "short" | "normal" | "long" {
	if (maxTokens < 64) return "short";
	return maxTokens > 512 ? "long" : "normal";
}

export const moondream31: ModelAdapter = {
	id: "@cf/moondream/moondream3.1-9B-A2B",
	task: "Image-to-Text",
	limits: { maxBytes: 512 * 1024, maxSide: 1024 },
	// The caption skill takes no language at all, and no other language is documented for queries.
	languages: "english",
	buildInput(image: ModelImage, request: ModelRequest) {
		const common = { image: toDataUrl(image), max_tokens: request.maxTokens, stream: false };
		if (!request.question) return { task: "caption", caption_length: captionLength(request.maxTokens), ...common };
		// The reasoning trace would spend the job's token budget on text it never shows.
		return { task: "query", question: request.prompt, reasoning: false, ...common };
	},
	readCaption(output: unknown) {
		const parsed = Output.parse(output);
		return "caption" in parsed ? parsed.caption : parsed.answer;
	},
};
