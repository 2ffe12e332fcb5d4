/** BENCHMARK ONLY: the status Worker with every request metered (meter.ts). */
import status from "../../workers/status/index";
import { meterInvocation, report } from "./meter";

// The status Worker's own Durable Object class, exported by this entry point as it is by the Worker's.
export { ApiKeyRateLimiter, AuthFailureLimiter } from "../../workers/status/index";

export default {
	async fetch(request, env, ctx) {
		const url = new URL(request.url);
		const { env: meteredEnv, counts } = meterInvocation(env);
		const done = () => report("status", `fetch ${request.method} ${url.pathname}`, counts);
		let response: Response;
		try {
			response = await status.fetch(request, meteredEnv, ctx);
		} catch (err) {
			done();
			throw err;
		}
		if (response.body === null) {
			done();
			return response;
		}
		// A streamed body (an export) reads D1 while the client takes it: its line waits for the end.
		return new Response(response.body.pipeThrough(new TransformStream({ flush: done })), response);
	},
} satisfies ExportedHandler<StatusEnv>;
