/** BENCHMARK ONLY: the consumer Worker with every invocation metered (meter.ts). */
import consumer from "../../workers/consumer/index";
import { metered, meteredBatch } from "./meter";

// Every class the consumer's entry point exports (its Durable Objects and entrypoints), so a class
// added there is never missing here: `export *` leaves out only its default handler, replaced below.
export * from "../../workers/consumer/index";

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
