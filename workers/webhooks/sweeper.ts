/**
 * The webhooks Worker's cron: sends again what fell between the cracks. Events that never reached
 * the queue (the consumer's send failed after the job finished) or were never dispatched, and
 * pending deliveries whose next attempt is long overdue with nobody holding them.
 */
import { log } from "../../shared/log";
import { sendAll } from "../../shared/queue/send";
import { findUndispatchedEvents } from "../../shared/webhooks/outbox";
import { takeStalledDeliveries } from "./deliveries";
import { eventMessage, sendDeliveries } from "./fan-out";

/** How long the normal path gets before the sweeper steps in. */
export const SWEEP_GRACE_MS = 5 * 60 * 1000;
/** Anything older than this is left alone (a persistent failure should not be retried forever). */
export const SWEEP_HORIZON_MS = 24 * 60 * 60 * 1000;

export interface SweepWindow {
	graceMs: number;
	horizonMs: number;
}

export async function sweepWebhooks(
	env: WebhooksEnv,
	now = Date.now(),
	window: SweepWindow = { graceMs: SWEEP_GRACE_MS, horizonMs: SWEEP_HORIZON_MS },
) {
	const before = now - window.graceMs;
	const since = now - window.horizonMs;
	const events = await findUndispatchedEvents(env.DB, before, since);
	await sendAll(env.WEBHOOK_DELIVERIES, events.map(eventMessage));
	const deliveries = await takeStalledDeliveries(env.DB, { overdueBefore: before, since }, now);
	await sendDeliveries(env.WEBHOOK_DELIVERIES, deliveries);
	if (events.length + deliveries.length > 0) {
		log("warn", "webhooks_swept", { events: events.length, deliveries: deliveries.length });
	}
	return { events: events.length, deliveries: deliveries.length };
}
