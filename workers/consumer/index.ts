/**
 * Consumer Worker: captions images from `caption-jobs` (interactive) and `caption-batch-jobs` (the
 * jobs of batches), each a lane of the scheduler (shared/scheduling/), fails dead letters from
 * `caption-jobs-dlq`, lists batches page by page from `batch-listing`, and sweeps stalled jobs and
 * listings on a cron (and, under `npm run dev`, through its `ConsumerRecovery` entrypoint: recovery.ts).
 */
import { Gather } from "../../shared/queue/gather";
import { runBatch } from "../../shared/queue/runner";
import { laneOfQueue, SCHEDULER_NAME, type SlotRequest } from "../../shared/scheduling/lanes";
import { handleBatchPage } from "./batch-lister";
import { acquireTogether, type SlotAnswer } from "./batch-slots";
import { handleCaptionMessage } from "./caption-job";
import { type ClaimAnswer, type ClaimAsk, claimJobs } from "./claims";
import { modelChainFor, readSettings } from "./config";
import { handleDeadLetter } from "./dead-letter";
import { type FinishAnswer, type FinishAsk, finishJobs } from "./finish";
import { recoverConsumer } from "./recovery";

export { EventHub } from "../../shared/events/hub";
export { ModelHealthRegistry } from "../../shared/models/health-registry";
export { LaneScheduler } from "../../shared/scheduling/scheduler";
export { ConsumerRecovery } from "./recovery";

const isListingQueue = (queue: string) => queue === "batch-listing";

export default {
	async queue(batch, env, ctx) {
		const settings = readSettings(env);
		if (isListingQueue(batch.queue)) {
			// One page a message (max_batch_size 1); a page message that keeps failing is dropped
			// after its retries and the cron sends the page again (there is no dead-letter queue).
			const page = () => (message: Message<unknown>) => handleBatchPage(message, env, settings);
			await runBatch(batch, { concurrency: 1, db: env.DB, live: page, deadLetter: page });
			return;
		}
		// `caption-jobs` (interactive) and `caption-batch-jobs` (batches): one handler, two lanes. The
		// chain is the batch's: it asks the health registry once per model for all its messages and
		// tells it their successful calls together, the last of them once the batch is done.
		const chain = modelChainFor(env, settings);
		await runBatch(batch, {
			concurrency: settings.CAPTION_CONCURRENCY,
			db: env.DB,
			live: () => {
				const batchContext = { env, settings, chain, lane: laneOfQueue(batch.queue) };
				const finishes = new Gather<FinishAsk, FinishAnswer>(
					(asks) => finishJobs(env, asks, Date.now()),
					settings.WRITE_HOLD_MS,
				);
				const claims = new Gather<ClaimAsk, ClaimAnswer>(
					(asks) => claimJobs(env.DB, asks, Date.now()),
					settings.WRITE_HOLD_MS,
				);
				const scheduler = env.MODEL_SCHEDULER.getByName(SCHEDULER_NAME);
				const slots = new Gather<SlotRequest, SlotAnswer>(
					async (requests) => acquireTogether(scheduler, requests),
					settings.WRITE_HOLD_MS,
				);
				return async (message, counters) => {
					const [claim, finish, slot] = [claims.join(), finishes.join(), slots.join()];
					try {
						const tickets = { claims: claim, finishes: finish, slots: slot };
						return await handleCaptionMessage(message, { ...batchContext, counters, ...tickets });
					} finally {
						claim.leave();
						finish.leave();
						slot.leave();
					}
				};
			},
			deadLetter: () => (message) => handleDeadLetter(message, env, settings),
		});
		// The batch's last successful calls reach the health registry after its messages are settled:
		// a record lost with the invocation costs GET /v1/models a few calls (shared/models/chain.ts).
		ctx.waitUntil(chain.flushRecords());
	},

	async scheduled(_controller, env, ctx) {
		ctx.waitUntil(recoverConsumer(env));
	},
} satisfies ExportedHandler<ConsumerEnv>;
