/** BENCHMARK ONLY: the status Worker with every request metered (meter.ts). */
import status from "../../workers/status/index";
import { meterInvocation, report } from "./meter";

// Every class the status Worker's entry point exports; its default handler is replaced below.
export * from "../../workers/status/index";

export default {
	async fetch(request, env, ctx) {
		const url = new URL(request.url);
		const { env: meteredEnv, counts } = meterInvocation(env);
		const started = performance.now();
		const done = () => report("status", `fetch ${request.method} ${url.pathname}`, counts, performance.now() - started);
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
