/**
 * Consumer Worker: captions images from `caption-jobs`, fails dead letters from
 * `caption-jobs-dlq`, and sweeps stalled jobs on a cron.
 */
import { runBatch } from "../../shared/queue/runner";
import { handleCaptionMessage } from "./caption-job";
import { modelChainFor, readSettings } from "./config";
import { handleDeadLetter } from "./dead-letter";
import { sweepStalledJobs } from "./sweeper";

export { ModelHealthRegistry } from "../../shared/models/health-registry";
export { ModelRateLimiter } from "./model-rate-limiter";

export default {
	async queue(batch, env, _ctx) {
		const settings = readSettings(env);
		await runBatch(batch, {
			concurrency: settings.CAPTION_CONCURRENCY,
			db: env.DB,
			live: () => {
				const batchContext = { env, settings, chain: modelChainFor(env, settings) };
				return (message, counters) => handleCaptionMessage(message, { ...batchContext, counters });
			},
			deadLetter: () => (message) => handleDeadLetter(message, env),
		});
	},

	async scheduled(_controller, env, ctx) {
		ctx.waitUntil(sweepStalledJobs(env, readSettings(env)));
	},
} satisfies ExportedHandler<ConsumerEnv>;
