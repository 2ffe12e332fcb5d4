/** The status Worker's settings, read from its environment and validated with zod. */
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { log } from "../../shared/log";
import { PLATFORM_RATE_LIMITS, RateLimitsSetting } from "../../shared/models/rate-limits";
import { ModelChainSetting } from "../../shared/models/registry";
import { SecretsKeyMismatch, verifySecretsKey } from "../../shared/webhooks/secrets-key";
import { ApiError } from "./api-error";
import type { AppEnv } from "./app-env";

const count = z.coerce.number().int().positive();

const Settings = z.object({
	/** The admin's bearer token (a secret); without it only API keys work. */
	ADMIN_TOKEN: z.string().optional(),
	DEPLOY_MODE: z.enum(["local", "production"]).default("production"),
	/** Seals the webhook secrets of subscriptions and API keys (a secret; shared/webhooks/secret-box.ts). */
	WEBHOOK_SECRETS_KEY: z.string().optional(),
	/** The key before a rotation (npm run secrets:rotate), while values sealed with it remain. */
	WEBHOOK_SECRETS_KEY_PREVIOUS: z.string().optional(),
	/** Subscriptions one API key may have (the admin has no limit). */
	MAX_SUBSCRIPTIONS_PER_KEY: z.coerce.number().int().min(0).default(20),
	BUCKET_NAME: z.string().min(1),
	MAX_UPLOAD_BYTES: count.default(25 * 1024 * 1024),
	/** Largest JSON request body (413 above it). */
	MAX_JSON_BYTES: count.default(2 * 1024 * 1024),
	/** Requests per minute of one API key, and how many may come at once after an idle spell (429 above). */
	RATE_LIMIT_PER_MINUTE: count.default(600),
	RATE_LIMIT_BURST: count.default(60),
	/**
	 * Requests without a valid token per minute from one client address, and how many may come at
	 * once (429 above, before the token is looked up; auth/failure-limit.ts).
	 */
	AUTH_FAILURE_LIMIT_PER_MINUTE: count.default(30),
	AUTH_FAILURE_BURST: count.default(10),
	/** Jobs of one API key that may be queued or processing at once, its batches' included (429 above). */
	MAX_JOBS_IN_FLIGHT: count.default(1000),
	/** Batches of one API key that may be listing or running at once (429 too_many_batches above). */
	MAX_OPEN_BATCHES_PER_KEY: count.default(5),
	/** The consumer's chain, listed by `GET /v1/models` (a config test keeps the two equal). */
	MODEL_CHAIN: ModelChainSetting,
	/** The consumer's model rate limits (a config test keeps the two equal): a batch's ETA is never shorter than they allow. */
	MODEL_RATE_LIMITS: RateLimitsSetting.default(RateLimitsSetting.parse(PLATFORM_RATE_LIMITS)),
});
export type StatusSettings = z.infer<typeof Settings>;

export const readSettings = (env: StatusEnv): StatusSettings => Settings.parse(env);

/**
 * The key that seals webhook secrets: without it no subscription, rotation or API key can be made
 * (503, saying what to set), rather than a secret stored in clear.
 */
export function sealingKey(env: StatusEnv): string {
	const key = readSettings(env).WEBHOOK_SECRETS_KEY;
	if (!key || key.length < 16) {
		log("error", "webhook_secrets_key_missing", { hint: "set the WEBHOOK_SECRETS_KEY secret (16+ characters)" });
		throw new ApiError(503, "unavailable", "Webhook secrets cannot be stored: the service has no WEBHOOK_SECRETS_KEY");
	}
	return key;
}

/**
 * Refuses every API request while WEBHOOK_SECRETS_KEY is not the key the stored secrets were sealed
 * with (shared/webhooks/secrets-key.ts): a 503 that says so, rather than sealing secrets that the
 * webhooks Worker cannot open. One D1 read per isolate.
 */
export const secretsKeyCheck: MiddlewareHandler<AppEnv> = async (c, next) => {
	const settings = readSettings(c.env);
	try {
		await verifySecretsKey(c.env.DB, {
			current: settings.WEBHOOK_SECRETS_KEY,
			previous: settings.WEBHOOK_SECRETS_KEY_PREVIOUS,
		});
	} catch (err) {
		if (!(err instanceof SecretsKeyMismatch)) throw err;
		log("error", "webhook_secrets_key_mismatch", { error: err.message });
		throw new ApiError(503, "secrets_key_mismatch", err.message);
	}
	await next();
};
