/**
 * The webhooks Worker's recovery sweep: the outbox (undispatched events), stalled deliveries, and
 * subscription secrets still stored in clear from before sealing (seal-legacy.ts).
 * The cron runs it with the production cut-offs; `npm run dev` runs it through the
 * `WebhooksRecovery` entrypoint (bound to the status Worker only locally) at start and
 * periodically, with its own.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { type RecoveryCutoffs, staleBefore, type WebhooksSweepReport } from "../../shared/recovery";
import { resealSecrets, verifySecretsKey } from "../../shared/webhooks/secrets-key";
import { readSettings } from "./config";
import { sealLegacySecrets } from "./seal-legacy";
import { SWEEP_GRACE_MS, sweepWebhooks } from "./sweeper";

export async function recoverWebhooks(
	env: WebhooksEnv,
	cutoffs: RecoveryCutoffs = {},
	now = Date.now(),
): Promise<WebhooksSweepReport> {
	const settings = readSettings(env);
	const keys = { current: settings.WEBHOOK_SECRETS_KEY, previous: settings.WEBHOOK_SECRETS_KEY_PREVIOUS };
	// A wrong key refuses here as in the queue handler (SecretsKeyMismatch): nothing is sealed with it.
	await verifySecretsKey(env.DB, keys, now);
	const [swept, sealed, resealed] = await Promise.all([
		sweepWebhooks(env, now, {
			before: staleBefore(cutoffs, now, SWEEP_GRACE_MS),
			touchedBefore: cutoffs.restarted_at ?? 0,
		}),
		sealLegacySecrets(env.DB, keys.current),
		resealSecrets(env.DB, keys),
	]);
	return {
		events_resent: swept.events,
		deliveries_resent: swept.deliveries,
		truncated: swept.truncated,
		secrets_sealed: sealed + resealed,
	};
}

export class WebhooksRecovery extends WorkerEntrypoint<WebhooksEnv> {
	sweep(cutoffs: RecoveryCutoffs): Promise<WebhooksSweepReport> {
		return recoverWebhooks(this.env, cutoffs);
	}
}
