/** The consumer's settings, read once per batch from its environment and validated with zod. */
import { z } from "zod";
import { modelBackend } from "../../shared/models/backend";
import { ModelChain } from "../../shared/models/chain";
import { parseModelChain } from "../../shared/models/registry";
import { modelPacer, type RatePolicy } from "./model-rate-limiter";

const Settings = z.object({
	DEFAULT_PROMPT: z.string().min(1).default("Generate a caption for this image"),
	DEFAULT_MAX_TOKENS: z.coerce.number().int().min(1).max(2048).default(512),
	MAX_OBJECT_BYTES: z.coerce
		.number()
		.int()
		.positive()
		.default(50 * 1024 * 1024),
	CAPTION_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(10),
	CAPTION_MAX_RETRIES: z.coerce.number().int().min(0).max(100).default(5),
	LEASE_SECONDS: z.coerce.number().int().min(10).default(120),
	RETRY_BASE_SECONDS: z.coerce.number().min(0).default(2),
	RETRY_MAX_SECONDS: z.coerce.number().min(0).default(300),
	// Model calls per minute across every consumer invocation; 0 (or empty) turns pacing off.
	MODEL_REQUESTS_PER_MINUTE: z.coerce.number().min(0).default(0),
	MODEL_BURST: z.coerce.number().int().min(1).default(10),
	MODEL_MAX_WAIT_SECONDS: z.coerce.number().min(0).default(30),
	// Objects (or given keys) per listing page of a batch; R2 lists at most 1,000 at a time.
	BATCH_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(1000),
});

export type ConsumerSettings = z.infer<typeof Settings>;

export function readSettings(env: ConsumerEnv): ConsumerSettings {
	return Settings.parse(env);
}

export function ratePolicy(settings: ConsumerSettings): RatePolicy | null {
	if (settings.MODEL_REQUESTS_PER_MINUTE <= 0) return null;
	return {
		requestsPerMinute: settings.MODEL_REQUESTS_PER_MINUTE,
		burst: settings.MODEL_BURST,
		maxWaitMs: settings.MODEL_MAX_WAIT_SECONDS * 1000,
	};
}

/**
 * A fresh chain per batch: "gone" models are remembered for the rest of the batch only. Every
 * model call first takes a slot from the shared rate limiter when MODEL_REQUESTS_PER_MINUTE is set.
 */
export function modelChainFor(env: ConsumerEnv, settings: ConsumerSettings): ModelChain {
	return new ModelChain(modelBackend(env), parseModelChain(env.MODEL_CHAIN), modelPacer(env, ratePolicy(settings)));
}
