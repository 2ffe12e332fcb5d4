/** The status Worker's settings, read from its environment and validated with zod. */
import { z } from "zod";

const Settings = z.object({
	/** The admin's bearer token (a secret); without it only API keys work. */
	ADMIN_TOKEN: z.string().optional(),
	DEPLOY_MODE: z.enum(["local", "production"]).default("production"),
	BUCKET_NAME: z.string().min(1),
	MAX_UPLOAD_BYTES: z.coerce
		.number()
		.int()
		.positive()
		.default(25 * 1024 * 1024),
});
export type StatusSettings = z.infer<typeof Settings>;

export const readSettings = (env: StatusEnv): StatusSettings => Settings.parse(env);
