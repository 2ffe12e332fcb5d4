/** The status Worker's settings, read from its environment and validated with zod. */
import { z } from "zod";
import { ModelChainSetting } from "../../shared/models/registry";

const count = z.coerce.number().int().positive();

const Settings = z.object({
	/** The admin's bearer token (a secret); without it only API keys work. */
	ADMIN_TOKEN: z.string().optional(),
	DEPLOY_MODE: z.enum(["local", "production"]).default("production"),
	BUCKET_NAME: z.string().min(1),
	MAX_UPLOAD_BYTES: count.default(25 * 1024 * 1024),
	/** Largest JSON request body (413 above it). */
	MAX_JSON_BYTES: count.default(2 * 1024 * 1024),
	/** Requests per minute of one API key, and how many may come at once after an idle spell (429 above). */
	RATE_LIMIT_PER_MINUTE: count.default(600),
	RATE_LIMIT_BURST: count.default(60),
	/** Jobs of one API key that may be queued or processing at once (429 above). */
	MAX_JOBS_IN_FLIGHT: count.default(1000),
	/** The consumer's chain, listed by `GET /v1/models` (a config test keeps the two equal). */
	MODEL_CHAIN: ModelChainSetting,
});
export type StatusSettings = z.infer<typeof Settings>;

export const readSettings = (env: StatusEnv): StatusSettings => Settings.parse(env);
