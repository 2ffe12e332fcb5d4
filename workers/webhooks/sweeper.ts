/**
 * The webhooks Worker's sweep (cron, and `npm run dev` at start and periodically): sends again
 * what fell between the cracks. Events that never reached the queue (the consumer's send failed
 * after the job finished) or were never dispatched, and pending deliveries whose next attempt is
 * long overdue with nobody holding them. Nothing is too old to be sent: one run pages through the
 * whole backlog, oldest first, until it is done or its time budget is spent; a run that ran out of
 * time saves where it stopped (`sweep_cursors`) and the next run goes on from there, so a backlog
 * larger than one run is walked through in full; a run that reaches the end starts the next pass
 * from the oldest.
 */
import { log } from "../../shared/log";
import { sendAll } from "../../shared/queue/send";
import {
	findUndispatchedEvents,
	type OutboxCursor,
	readOutboxCursor,
	saveOutboxCursor,
} from "../../shared/webhooks/outbox";
import { takeStalledDeliveries } from "./deliveries";
import { eventMessage, sendDeliveries } from "./fan-out";

/** How long the normal path gets before the sweeper steps in. */
export const SWEEP_GRACE_MS = 5 * 60 * 1000;
/** Wall time one run may spend on each of events and deliveries. */
export const SWEEP_BUDGET_MS = 20_000;
export const SWEEP_PAGE_SIZE = 100;

export interface SweepOptions {
	/** Events created and deliveries due before this are swept (default: `now` minus the grace period). */
	before?: number;
	/**
	 * Pending deliveries last touched before this are swept whatever their lease or next attempt
	 * (a restarted local stack: their sender and their retry message are gone). 0: none.
	 */
	touchedBefore?: number;
	budgetMs?: number;
	pageSize?: number;
}

export interface SweepResult {
	events: number;
	deliveries: number;
	/** Whether a budget ran out with more to do (the next run goes on). */
	truncated: boolean;
}

export async function sweepWebhooks(
	env: WebhooksEnv,
	now = Date.now(),
	options: SweepOptions = {},
): Promise<SweepResult> {
	const before = options.before ?? now - SWEEP_GRACE_MS;
	const budget = options.budgetMs ?? SWEEP_BUDGET_MS;
	const pageSize = options.pageSize ?? SWEEP_PAGE_SIZE;

	let events = 0;
	let truncated = false;
	let cursor: OutboxCursor | null = await readOutboxCursor(env.DB);
	let deadline = Date.now() + budget;
	for (;;) {
		const page = await findUndispatchedEvents(env.DB, before, cursor, pageSize);
		await sendAll(env.WEBHOOK_DELIVERIES, page.map(eventMessage));
		events += page.length;
		const last = page.at(-1);
		if (page.length < pageSize || !last) {
			cursor = null;
			break;
		}
		cursor = { created_at: last.created_at, id: last.id };
		if (Date.now() >= deadline) {
			truncated = true;
			break;
		}
	}
	await saveOutboxCursor(env.DB, cursor, now);

	let deliveries = 0;
	deadline = Date.now() + budget;
	const window = { overdueBefore: before, touchedBefore: options.touchedBefore ?? 0 };
	for (;;) {
		// Each taken delivery is marked due now, so the next page is the next ones.
		const ids = await takeStalledDeliveries(env.DB, window, now, pageSize);
		await sendDeliveries(env.WEBHOOK_DELIVERIES, ids);
		deliveries += ids.length;
		if (ids.length < pageSize) break;
		if (Date.now() >= deadline) {
			truncated = true;
			break;
		}
	}

	if (events + deliveries > 0) log("warn", "webhooks_swept", { events, deliveries, truncated });
	return { events, deliveries, truncated };
}
