/**
 * Test entry point: the real handlers of every Worker behind one fetch/queue/scheduled export,
 * routed the way the deployed Workers are bound to their queues.
 */
import consumer from "../workers/consumer/index";
import status from "../workers/status/index";
import webhooks from "../workers/webhooks/index";
import { handledMessages, observeOutcomes } from "./support/outcomes";
import { noteDelayedRetry, trackingContext, trackQueueWork } from "./support/queue-work";

// Durable Object classes of the Workers, exported by the test entry point as they are by theirs.
export {
	ConsumerRecovery,
	EventHub,
	LaneScheduler,
	ModelHealthRegistry,
} from "../workers/consumer/index";
export { ApiKeyRateLimiter, AuthFailureLimiter } from "../workers/status/index";
export { WebhooksRecovery } from "../workers/webhooks/index";

export default {
	fetch: status.fetch,
	async queue(batch, env, ctx) {
		// Tests that go through the real queues wait on these outcomes (test/support/outcomes.ts).
		const observed = observeOutcomes(batch, (message, outcome) => {
			handledMessages.push({ queue: batch.queue, body: message.body, outcome });
			// A message sent back with a delay is work to come (test/support/quiet.ts waits for it).
			if (outcome.kind === "retry") noteDelayedRetry(outcome.delaySeconds);
		});
		// Counted until it and its waitUntil work settle (test/support/quiet.ts waits for none running).
		const tracked = trackingContext(ctx);
		// webhook-deliveries and webhook-deliveries-dlq belong to the webhooks Worker.
		if (batch.queue.startsWith("webhook-deliveries")) return trackQueueWork(webhooks.queue(observed, env, tracked));
		return trackQueueWork(consumer.queue(observed, env, tracked));
	},
	// Both Workers have a cron (they run on the same schedule when deployed).
	async scheduled(controller, env, ctx) {
		await Promise.all([consumer.scheduled(controller, env, ctx), webhooks.scheduled(controller, env, ctx)]);
	},
} satisfies ExportedHandler<TestEnv>;
