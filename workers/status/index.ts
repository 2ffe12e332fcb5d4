/** Status Worker: the public HTTP API (workers/status/app.ts). */
import { app } from "./app";

export { AuthFailureLimiter } from "./auth-failure-limiter";
export { ApiKeyRateLimiter } from "./key-rate-limiter";

export default {
	fetch: app.fetch,
} satisfies ExportedHandler<StatusEnv>;
