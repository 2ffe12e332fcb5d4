/**
 * The model interface the consumer talks to: the Workers AI binding in production, the emulator
 * locally and in tests. Adapters turn (image, request) into one model's input.
 */
import type { ImageInfo } from "../image/sniff";
import { isEnglish } from "../outputs/spec";
import type { ModelTask } from "./input-schemas";

export type { ModelTask } from "./input-schemas";

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

/** What a job asks of a model. */
export interface ModelRequest {
	prompt: string;
	maxTokens: number;
	/**
	 * The job brings its own prompt (a question or an instruction, explicit or from metadata) rather
	 * than the service's default caption prompt; set where options are resolved
	 * (shared/jobs/options.ts), never inferred from the text. Models with a dedicated captioning
	 * skill (moondream) use that skill only for the default.
	 */
	question: boolean;
	/**
	 * The API key whose request this is (null for the admin's and bucket uploads): a failure on one
	 * key's requests alone does not open the model's shared circuit (./health.ts).
	 */
	keyId: string | null;
	/**
	 * The JSON Schema a `json_schema` output must satisfy (null for the text kinds): models with
	 * documented structured output get it as `response_format` or `guided_json` as well as in the prompt.
	 */
	jsonSchema?: Record<string, unknown> | null;
	/** The BCP 47 tag the answer is to be written in (null: the model's default, English). */
	language?: string | null;
}

/**
 * Which languages a model writes from an image: `any` (its vendor documents many), or `english`
 * only (its vendor says image understanding is English-only, or documents nothing). A job in
 * another language skips an `english` model (docs/models.md).
 */
export type ModelLanguages = "any" | "english";

export interface ModelAdapter {
	readonly id: string;
	/** The Workers AI task type: it decides which per-minute rate limit the model's calls count against. */
	readonly task: ModelTask;
	readonly limits: ImageLimits;
	readonly languages: ModelLanguages;
	buildInput(image: ModelImage, request: ModelRequest): Record<string, unknown>;
	/**
	 * The caption in the model's output; throws if the output does not have the model's shape.
	 * `request` is what the model was asked: a structured-output answer (`jsonSchema`) may be a
	 * JSON value, which the caption carries as its JSON text.
	 */
	readCaption(output: unknown, request?: Pick<ModelRequest, "jsonSchema">): string;
}

/** Whether a model can write captions in `language` (null: the default, English). */
export const writes = (adapter: Pick<ModelAdapter, "languages">, language: string | null): boolean =>
	adapter.languages === "any" || isEnglish(language);

/**
 * Thrown by a `Prepare` (the caller's image preparation) when the image cannot be brought within a
 * model's limits at all: the chain passes that model over as too large, and goes on to the next.
 */
export class ImageUnfit extends Error {
	override readonly name = "ImageUnfit";
}
