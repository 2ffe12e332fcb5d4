/** Status Worker: the public HTTP API (workers/status/app.ts). */
import { app } from "./app";

export default {
	fetch: app.fetch,
} satisfies ExportedHandler<StatusEnv>;
