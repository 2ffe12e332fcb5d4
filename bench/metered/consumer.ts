/** BENCHMARK ONLY: the consumer Worker with every invocation metered (meter.ts). */
import consumer from "../../workers/consumer/index";
import { metered, meteredBatch } from "./meter";

// The Durable Object classes the consumer's config binds, exported as the Worker's entry point does.
export {
	ConsumerRecovery,
	EventHub,
	LaneScheduler,
	ModelHealthRegistry,
	ModelRateLimiter,
} from "../../workers/consumer/index";

export default {
	queue(batch, env, ctx) {
		return metered("consumer", `queue ${batch.queue}`, env, (e, counts) =>
			consumer.queue(meteredBatch(batch, counts), e, ctx),
		);
	},
	scheduled(controller, env, ctx) {
		return metered("consumer", "scheduled", env, (e) => consumer.scheduled(controller, e, ctx));
	},
} satisfies ExportedHandler<ConsumerEnv>;
