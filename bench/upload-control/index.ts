/**
 * BENCHMARK ONLY: the least a Worker can do with an upload, piping the request body straight into
 * R2. Run in the status Worker's place by the upload-memory scenario (bench/upload-memory.ts), it
 * measures what local R2 and workerd's HTTP layer take for the same body, so that what the status
 * Worker itself adds can be told apart. Nothing here is deployed.
 */
export { ApiKeyRateLimiter, AuthFailureLimiter } from "../../workers/status/index";

export default {
	async fetch(request, env) {
		const key = decodeURIComponent(new URL(request.url).pathname.replace(/^\/v1\/images\//, ""));
		const object = await env.BUCKET.put(key, request.body);
		return Response.json({ etag: object?.etag ?? null }, { status: 202 });
	},
} satisfies ExportedHandler<StatusEnv>;
