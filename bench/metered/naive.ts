/** BENCHMARK ONLY: the naive baseline consumer (../naive-consumer) with every invocation metered (meter.ts). */
import naive from "../naive-consumer/index";
import { metered, meteredBatch } from "./meter";

export default {
	queue(batch, env) {
		return metered("consumer", `queue ${batch.queue}`, env, (e, counts) => naive.queue(meteredBatch(batch, counts), e));
	},
} satisfies ExportedHandler<NaiveConsumerEnv>;
