/** BENCHMARK ONLY: the status Worker with every request metered (meter.ts). */
import status from "../../workers/status/index";
import { metered } from "./meter";

export default {
	fetch(request, env, ctx) {
		const url = new URL(request.url);
		return metered("status", `fetch ${request.method} ${url.pathname}`, env, async (e) =>
			status.fetch(request, e, ctx),
		);
	},
} satisfies ExportedHandler<StatusEnv>;
