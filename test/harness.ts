/**
 * Test entry point: the real handlers of every Worker behind one fetch/queue/scheduled export,
 * routed the way the deployed Workers are bound to their queues.
 */
import consumer from "../workers/consumer/index";
import status from "../workers/status/index";

export default {
	fetch: status.fetch,
	queue: consumer.queue,
	scheduled: consumer.scheduled,
} satisfies ExportedHandler<TestEnv>;
