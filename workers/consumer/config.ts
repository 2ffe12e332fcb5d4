/** The consumer's settings, read once per batch from its environment and validated with zod. */
import { z } from "zod";
import { IMAGES_MAX_INPUT_BYTES } from "../../shared/image/images-errors";
import { modelBackend } from "../../shared/models/backend";
import { ModelChain, type ModelHealthGate } from "../../shared/models/chain";
import type { HealthPolicy } from "../../shared/models/health";
import { HEALTH_REGISTRY_NAME } from "../../shared/models/model-list";
import { PLATFORM_RATE_LIMITS, RateLimitsSetting } from "../../shared/models/rate-limits";
import { ModelChainSetting } from "../../shared/models/registry";
import { MAX_DELAY_SECONDS } from "../../shared/queue/runner";

const Settings = z.object({
	// "local": a callback-url in custom metadata may be http on loopback (shared/webhooks/ssrf.ts).
	DEPLOY_MODE: z.enum(["local", "production"]).default("production"),
	// The bucket whose notifications make jobs; a notification about another bucket is counted
	// (`foreign_bucket_notifications`) and acknowledged.
	BUCKET_NAME: z.string().min(1),
	// Comma-separated model ids, tried in order; empty: the default chain.
	MODEL_CHAIN: ModelChainSetting,
	DEFAULT_PROMPT: z.string().min(1).default("Generate a caption for this image"),
	DEFAULT_MAX_TOKENS: z.coerce.number().int().min(1).max(2048).default(512),
	// Larger objects cannot be captioned: they would need downscaling, and the Images binding takes
	// at most IMAGES_MAX_INPUT_BYTES (shared/image/images-errors.ts); a larger value is still held to it.
	MAX_OBJECT_BYTES: z.coerce.number().int().positive().default(IMAGES_MAX_INPUT_BYTES),
	CAPTION_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(10),
	// How long a queue batch's claim or finish that is ready waits for the batch's other messages to
	// be ready too, so that they are written in one D1 transaction (shared/queue/gather.ts): a
	// message held up (a rate-limit slot far off, a slow model) delays its neighbours by at most this.
	WRITE_HOLD_MS: z.coerce.number().int().min(0).max(10_000).default(1000),
	CAPTION_MAX_RETRIES: z.coerce.number().int().min(0).max(100).default(5),
	LEASE_SECONDS: z.coerce.number().int().min(10).default(120),
	RETRY_BASE_SECONDS: z.coerce.number().min(0).default(2),
	// A queue delay may not exceed MAX_DELAY_SECONDS (shared/queue/delays.ts says why).
	RETRY_MAX_SECONDS: z.coerce.number().min(0).max(MAX_DELAY_SECONDS).default(300),
	// Workers AI's per-minute limits by task type or model id, paced across every consumer
	// invocation (a Durable Object per limit); "off" turns pacing off.
	MODEL_RATE_LIMITS: RateLimitsSetting.default(RateLimitsSetting.parse(PLATFORM_RATE_LIMITS)),
	MODEL_BURST: z.coerce.number().int().min(1).default(5),
	MODEL_MAX_WAIT_SECONDS: z.coerce.number().min(0).default(30),
	// The share (percent) of each rate limit's slots the batch lane is owed while it has work
	// waiting, however busy the interactive lane (shared/scheduling/policy.ts).
	BATCH_MIN_SHARE_PERCENT: z.coerce.number().min(0).max(100).default(20),
	// Model health (shared/models/health.ts), shared by every invocation through a Durable Object.
	MODEL_CIRCUIT_FAILURES: z.coerce.number().int().min(1).default(5),
	MODEL_COOLDOWN_SECONDS: z.coerce.number().positive().default(60),
	MODEL_MAX_COOLDOWN_SECONDS: z.coerce.number().positive().default(3600),
	// Objects (or given keys) per listing page of a batch; R2 lists at most 1,000 at a time.
	BATCH_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(1000),
	// Jobs of one API key queued or processing at once: the status Worker's setting of the same name
	// (a config test keeps the two equal). A key's batch lists no more than its room under it.
	MAX_JOBS_IN_FLIGHT: z.coerce.number().int().positive().default(1000),
	// Jobs of one API key's batches the lister keeps queued or processing at once (with the key's
	// other jobs, never over MAX_JOBS_IN_FLIGHT): each key's backfill holds about this many in the
	// batch lane's queue, so keys progress at equal rates.
	BATCH_KEY_WINDOW: z.coerce.number().int().positive().default(200),
	// How long a listing page held at its key's cap waits before it looks again (batch-lister.ts):
	// jobs finish in seconds, and a key's next chunk enters the queue at most this late.
	BATCH_HOLD_SECONDS: z.coerce.number().int().min(1).max(300).default(5),
	// Retention (retention.ts): days after they end that rows are archived and deleted; 0 deletes at the next sweep.
	RETENTION_WEBHOOKS_DAYS: z.coerce.number().min(0).default(7),
	RETENTION_JOBS_DAYS: z.coerce.number().min(0).default(30),
	RETENTION_BATCHES_DAYS: z.coerce.number().min(0).default(90),
	// "off": retention deletes without writing the rows to ARCHIVE_BUCKET first.
	ARCHIVE: z.enum(["on", "off"]).default("on"),
});

export type ConsumerSettings = z.infer<typeof Settings>;

export function readSettings(env: ConsumerEnv): ConsumerSettings {
	return Settings.parse(env);
}

export function healthPolicy(settings: ConsumerSettings): HealthPolicy {
	return {
		failureThreshold: settings.MODEL_CIRCUIT_FAILURES,
		cooldownMs: settings.MODEL_COOLDOWN_SECONDS * 1000,
		maxCooldownMs: Math.max(settings.MODEL_COOLDOWN_SECONDS, settings.MODEL_MAX_COOLDOWN_SECONDS) * 1000,
	};
}

/** The registry Durable Object as the chain uses it, with the configured health policy. */
function healthGate(env: ConsumerEnv, policy: HealthPolicy): ModelHealthGate {
	const registry = env.MODEL_HEALTH.getByName(HEALTH_REGISTRY_NAME);
	return {
		admit: (model) => registry.admit(model),
		record: (model, call) => registry.record(model, call, policy),
		recordMany: (calls) => registry.recordMany(calls, policy),
		abandon: (model) => registry.abandon(model),
	};
}

/**
 * A fresh chain per batch. Which models are gone or open is shared by every batch through the
 * health registry, which the batch asks once per model for all its messages and tells its
 * successful calls together (at most WRITE_HOLD_MS after the first). Each caption's route (its
 * models in order, and the slot of its rate limit before every call) comes from the lane
 * scheduler (lane-route.ts).
 */
export function modelChainFor(env: ConsumerEnv, settings: ConsumerSettings): ModelChain {
	return new ModelChain(modelBackend(env), healthGate(env, healthPolicy(settings)), settings.WRITE_HOLD_MS);
}
