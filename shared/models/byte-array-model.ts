/**
 * Adapters for vision models that take the image as an array of bytes:
 * @cf/unum/uform-gen2-qwen-500m and @cf/llava-hf/llava-1.5-7b-hf (Image-to-Text, answer
 * `{ description }`) and @cf/meta/llama-3.2-11b-vision-instruct (Text Generation, answer `{ response }`).
 */
import { z } from "zod";
import type { ImageLimits, ModelAdapter, ModelImage, ModelRequest, ModelTask } from "./types";

const Description = z.object({ description: z.string() });
const Answer = z.object({ response: z.string() });

/** Byte arrays stay small: they are built only from an image already downscaled under `maxBytes`. */
const BYTE_ARRAY_LIMITS: ImageLimits = { maxBytes: 512 * 1024, maxSide: 1024 };

/**
 * The image goes as a number array, as the published schema asks, next to the prompt. The limits
 * keep it small: the array is built only from an image already downscaled, never from a raw upload.
 */
export function byteArrayModel(id: string, task: ModelTask, answer: "description" | "response"): ModelAdapter {
	return {
		id,
		task,
		limits: BYTE_ARRAY_LIMITS,
		// llama-3.2-vision: "for image+text applications, English is the only language supported";
		// uform-gen2 and llava document no other language.
		languages: "english",
		buildInput(image: ModelImage, request: ModelRequest) {
			return { image: Array.from(image.bytes), prompt: request.prompt, max_tokens: request.maxTokens };
		},
		readCaption(output: unknown) {
			return answer === "description" ? Description.parse(output).description : Answer.parse(output).response;
		},
	};
}

export const uformGen2 = byteArrayModel("@cf/unum/uform-gen2-qwen-500m", "Image-to-Text", "description");
export const llava15 = byteArrayModel("@cf/llava-hf/llava-1.5-7b-hf", "Image-to-Text", "description");
export const llama32Vision = byteArrayModel("@cf/meta/llama-3.2-11b-vision-instruct", "Text Generation", "response");
