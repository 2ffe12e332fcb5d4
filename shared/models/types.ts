/**
 * The model interface the consumer talks to: the Workers AI binding in production, the emulator
 * locally and in tests. Adapters turn (image, prompt, max_tokens) into one model's input.
 */
import type { ImageInfo } from "../image/sniff";

/** The one method of the Workers AI binding the product uses. */
export interface AiRunner {
	run(model: string, inputs: Record<string, unknown>): Promise<unknown>;
}

/** An image ready for a model: within that model's byte and side limits. */
export interface ModelImage {
	bytes: Uint8Array;
	info: ImageInfo;
}

export interface ImageLimits {
	/** Largest image payload sent to the model, in bytes. */
	maxBytes: number;
	/** Longest side, in pixels; larger images are downscaled first. */
	maxSide: number;
}

export interface ModelAdapter {
	readonly id: string;
	readonly limits: ImageLimits;
	buildInput(image: ModelImage, prompt: string, maxTokens: number): Record<string, unknown>;
	/** The caption in the model's output; throws if the output does not have the model's shape. */
	readCaption(output: unknown): string;
}
