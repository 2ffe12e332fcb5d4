/**
 * Workers AI's published prices of the captioning models, per million input and output tokens
 * (developers.cloudflare.com/workers-ai/platform/pricing/, page last updated 2026-08-28, read for
 * this table on 2026-12-05). A model without a published price (a beta model) is null: its
 * estimate has no dollar figure. docs/batches.md#estimates explains the arithmetic.
 */

/** When the prices below were read from the pricing page. */
export const PRICES_READ_ON = "2026-12-05";
export const PRICES_SOURCE = "https://developers.cloudflare.com/workers-ai/platform/pricing/";

export interface TokenPrice {
	/** US dollars per million input tokens (an image counts as input tokens). */
	inputPerMillion: number;
	/** US dollars per million output tokens. */
	outputPerMillion: number;
}

export const MODEL_PRICES: ReadonlyMap<string, TokenPrice | null> = new Map([
	["@cf/moondream/moondream3.1-9B-A2B", { inputPerMillion: 0.3, outputPerMillion: 1.0 }],
	["@cf/google/gemma-4-26b-a4b-it", { inputPerMillion: 0.1, outputPerMillion: 0.3 }],
	["@cf/meta/llama-4-scout-17b-16e-instruct", { inputPerMillion: 0.27, outputPerMillion: 0.85 }],
	["@cf/mistralai/mistral-small-3.1-24b-instruct", { inputPerMillion: 0.351, outputPerMillion: 0.555 }],
	["@cf/meta/llama-3.2-11b-vision-instruct", { inputPerMillion: 0.049, outputPerMillion: 0.676 }],
	["@cf/llava-hf/llava-1.5-7b-hf", null],
]);

/**
 * Tokens one caption is assumed to take: Workers AI publishes no tokens per image. 729 input tokens
 * is what moondream reports for an image (its `metrics.input_tokens`), plus the prompt's; 100 output
 * tokens is a caption of about 75 words.
 */
export const TOKENS_PER_CAPTION = { input: 750, output: 100 } as const;
