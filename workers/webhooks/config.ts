/** The webhooks Worker's settings, read from its environment and validated with zod. */
import { z } from "zod";
import { PLATFORM_RATE_LIMITS, RateLimitsSetting } from "../../shared/models/rate-limits";
import { ModelChainSetting } from "../../shared/models/registry";
import { MAX_DELAY_SECONDS } from "../../shared/queue/runner";
import { isWebhookSecret } from "../../shared/webhooks/sign";

const Settings = z.object({
	DEPLOY_MODE: z.enum(["local", "production"]).default("production"),
	/** Signs deliveries to per-object callback URLs (a `whsec_` secret). */
	WEBHOOK_SECRET: z.string().refine(isWebhookSecret, "WEBHOOK_SECRET must be a whsec_ secret").optional(),
	/** Opens the sealed secrets of subscriptions and API keys (shared/webhooks/secret-box.ts). */
	WEBHOOK_SECRETS_KEY: z.string().optional(),
	/** The key before a rotation (npm run secrets:rotate): still opens what it sealed until the sweep re-seals it. */
	WEBHOOK_SECRETS_KEY_PREVIOUS: z.string().optional(),
	/** An endpoint that fails every attempt for this long has its subscription disabled. */
	WEBHOOK_DISABLE_FAILING_HOURS: z.coerce.number().positive().default(24),
	WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
	/**
	 * Deliveries of one batch sent at once. A Worker invocation keeps at most six connections open at
	 * a time (developers.cloudflare.com/workers/platform/limits/#simultaneous-open-connections); a
	 * seventh fetch waits for one of them to close, and that wait would count against its
	 * WEBHOOK_TIMEOUT_MS. So six is both the default and the most.
	 */
	WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(6).default(6),
	// Must equal max_retries of the webhook-deliveries consumer: the last attempt fails the delivery.
	WEBHOOK_MAX_RETRIES: z.coerce.number().int().min(0).max(100).default(8),
	WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number().min(0).default(5),
	// A queue delay may not exceed MAX_DELAY_SECONDS (shared/queue/delays.ts says why).
	WEBHOOK_RETRY_MAX_SECONDS: z.coerce.number().min(0).max(MAX_DELAY_SECONDS).default(3600),
	// The consumer's chain and rate limits (a config test keeps them equal): the ETA of a
	// `batch.progress` event is never shorter than they allow, and a batch event's estimate is
	// priced on the chain's first model, as GET /v1/batches/{id} prices it.
	MODEL_CHAIN: ModelChainSetting,
	MODEL_RATE_LIMITS: RateLimitsSetting.default(RateLimitsSetting.parse(PLATFORM_RATE_LIMITS)),
});

export type WebhookSettings = z.infer<typeof Settings>;

export const readSettings = (env: WebhooksEnv): WebhookSettings => Settings.parse(env);
