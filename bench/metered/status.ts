/** BENCHMARK ONLY: the status Worker with every request metered (meter.ts). */
import status from "../../workers/status/index";
import { metered } from "./meter";

// The status Worker's own Durable Object class, exported by this entry point as it is by the Worker's.
export { ApiKeyRateLimiter, AuthFailureLimiter } from "../../workers/status/index";

export default {
	fetch(request, env, ctx) {
		const url = new URL(request.url);
		return metered("status", `fetch ${request.method} ${url.pathname}`, env, async (e) =>
			status.fetch(request, e, ctx),
		);
	},
} satisfies ExportedHandler<StatusEnv>;
