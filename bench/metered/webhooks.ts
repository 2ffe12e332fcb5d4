/** BENCHMARK ONLY: the webhooks Worker with every invocation metered (meter.ts). */
import webhooks from "../../workers/webhooks/index";
import { metered, meteredBatch } from "./meter";

// The status Worker binds it locally (npm run dev's recovery sweep).
export { WebhooksRecovery } from "../../workers/webhooks/index";

export default {
	queue(batch, env, ctx) {
		return metered("webhooks", `queue ${batch.queue}`, env, (e, counts) =>
			webhooks.queue(meteredBatch(batch, counts), e, ctx),
		);
	},
	scheduled(controller, env, ctx) {
		return metered("webhooks", "scheduled", env, (e) => webhooks.scheduled(controller, e, ctx));
	},
} satisfies ExportedHandler<WebhooksEnv>;
