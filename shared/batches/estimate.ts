/**
 * A planned batch's estimate (docs/batches.md#estimates): how many model calls its jobs would make,
 * how long they take at the model's rate limit, and what they cost at the published price.
 *
 *     model_calls = objects that would get a job (total - skipped - missing)
 *     minutes_at_rate_limit = model_calls / requests per minute of the model's limit
 *     usd = model_calls × (input tokens × input price + output tokens × output price) / 1,000,000
 */
import { z } from "zod";
import { MODEL_PRICES, TOKENS_PER_CAPTION } from "../models/prices";
import { PLATFORM_RATE_LIMITS, RateLimitsSetting, rateLimitFor } from "../models/rate-limits";
import { type ModelAdapter, writes } from "../models/types";

export const Estimate = z
	.object({
		model: z.string().meta({ description: "The model jobs start with: the first of MODEL_CHAIN." }),
		model_calls: z.number().int().meta({ description: "Objects that would get a job: one model call each." }),
		minutes_at_rate_limit: z.number().meta({
			description: "model_calls divided by the model's rate limit (requests per minute), to a tenth of a minute.",
		}),
		usd: z.number().nullable().meta({
			description:
				"At the published price per token and the assumed tokens per caption; null when the model has no published price.",
		}),
	})
	.meta({ id: "Estimate" });
export type Estimate = z.infer<typeof Estimate>;

/** A model an estimate may be priced on. */
export type EstimateModel = Pick<ModelAdapter, "id" | "task" | "languages">;

/**
 * The model a batch's estimate is priced on: the chain's first that writes the batch's language,
 * the one each of its jobs tries first (with the default chain, moondream for English and Mistral
 * Small 3.1 for another language).
 */
export const estimateModel = (chain: readonly EstimateModel[], language: string | null): EstimateModel | undefined =>
	chain.find((model) => writes(model, language));

const PLATFORM_LIMITS = RateLimitsSetting.parse(PLATFORM_RATE_LIMITS);

export function estimate(model: EstimateModel, modelCalls: number): Estimate {
	const limit = rateLimitFor(model, PLATFORM_LIMITS);
	const price = MODEL_PRICES.get(model.id) ?? null;
	const perCall =
		price === null
			? null
			: (TOKENS_PER_CAPTION.input * price.inputPerMillion + TOKENS_PER_CAPTION.output * price.outputPerMillion) / 1e6;
	return {
		model: model.id,
		model_calls: modelCalls,
		minutes_at_rate_limit: limit === null ? 0 : Math.ceil((modelCalls / limit.perMinute) * 10) / 10,
		usd: perCall === null ? null : Math.round(modelCalls * perCall * 1e6) / 1e6,
	};
}
