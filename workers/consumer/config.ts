/** The consumer's settings, read once per batch from its environment and validated with zod. */
import { z } from "zod";
import { modelBackend } from "../../shared/models/backend";
import { ModelChain } from "../../shared/models/chain";
import { parseModelChain } from "../../shared/models/registry";

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
});

export type ConsumerSettings = z.infer<typeof Settings>;

export function readSettings(env: ConsumerEnv): ConsumerSettings {
	return Settings.parse(env);
}

/** A fresh chain per batch: "gone" models are remembered for the rest of the batch only. */
export function modelChainFor(env: ConsumerEnv): ModelChain {
	return new ModelChain(modelBackend(env), parseModelChain(env.MODEL_CHAIN));
}
