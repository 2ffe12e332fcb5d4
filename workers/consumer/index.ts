/**
 * Consumer Worker: captions images from `caption-jobs`, fails dead letters from
 * `caption-jobs-dlq`, and sweeps stalled jobs on a cron.
 */
import { incrementCounters } from "../../shared/jobs/store";
import { errorMessage, log } from "../../shared/log";
import { mapConcurrent } from "../../shared/queue/concurrency";
import { type BatchContext, handleCaptionMessage, type Outcome } from "./caption-job";
import { modelChainFor, readSettings } from "./config";
import { handleDeadLetter } from "./dead-letter";
import { sweepStalledJobs } from "./sweeper";

export { ModelHealthRegistry } from "../../shared/models/health-registry";
export { ModelRateLimiter } from "./model-rate-limiter";

const isDeadLetterQueue = (queue: string) => queue.endsWith("-dlq");

function apply(message: Message<unknown>, outcome: Outcome): void {
	if ("ack" in outcome) message.ack();
	else message.retry({ delaySeconds: outcome.retryAfterSeconds });
}

export default {
	async queue(batch, env, _ctx) {
		const settings = readSettings(env);
		if (isDeadLetterQueue(batch.queue)) {
			await mapConcurrent(batch.messages, settings.CAPTION_CONCURRENCY, async (message) =>
				apply(message, await handleDeadLetter(message, env)),
			);
			return;
		}
		const ctx: BatchContext = { env, settings, chain: modelChainFor(env, settings), counters: {} };
		await mapConcurrent(batch.messages, settings.CAPTION_CONCURRENCY, async (message) => {
			let outcome: Outcome;
			try {
				outcome = await handleCaptionMessage(message, ctx);
			} catch (err) {
				// Unexpected (D1 or R2 unavailable): this message alone is retried; the batch goes on.
				log("error", "message_failed", { message_id: message.id, error: errorMessage(err) });
				outcome = { retryAfterSeconds: Math.min(60, 2 ** message.attempts) };
			}
			apply(message, outcome);
		});
		await incrementCounters(env.DB, ctx.counters).catch((err) =>
			log("error", "counters_failed", { error: errorMessage(err) }),
		);
	},

	async scheduled(_controller, env, ctx) {
		ctx.waitUntil(sweepStalledJobs(env, readSettings(env)));
	},
} satisfies ExportedHandler<ConsumerEnv>;
