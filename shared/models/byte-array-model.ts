/**
 * Adapters for vision models that take the image as an array of bytes and answer
 * `{ description }`: @cf/unum/uform-gen2-qwen-500m and @cf/llava-hf/llava-1.5-7b-hf.
 */
import { z } from "zod";
import type { ImageLimits, ModelAdapter, ModelImage } from "./types";

const Output = z.object({ description: z.string() });

/**
 * The image goes as a number array, as the published schema asks. The limits keep it small: the
 * array is built only from an image already downscaled under `maxBytes`, never from a raw upload.
 */
export function byteArrayModel(id: string, limits: ImageLimits): ModelAdapter {
	return {
		id,
		limits,
		buildInput(image: ModelImage, prompt: string, maxTokens: number) {
			return { image: Array.from(image.bytes), prompt, max_tokens: maxTokens };
		},
		readCaption(output: unknown) {
			return Output.parse(output).description;
		},
	};
}

export const uformGen2 = byteArrayModel("@cf/unum/uform-gen2-qwen-500m", { maxBytes: 512 * 1024, maxSide: 1024 });
export const llava15 = byteArrayModel("@cf/llava-hf/llava-1.5-7b-hf", { maxBytes: 512 * 1024, maxSide: 1024 });
