/**
 * A quiet start for a file that shares its runtime with the files before it (QUIET_START in
 * vitest.config.ts, test/quiet-setup.ts): it waits until their work is over, then starts from the
 * storage of a fresh runtime and resets what every caption shares, so the file counts rows, model
 * calls and health figures as it would in a runtime of its own.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { SCHEDULER_NAME } from "../../shared/scheduling/lanes";
import { freshStorage } from "./fresh-storage";
import { resetModels } from "./models";
import { queueWork } from "./queue-work";

/** How long nothing may move before the runtime counts as quiet: a message sent is delivered within it. */
export const SETTLE_MS = 500;
/** How long to wait for the work of the files before to end. */
export const QUIET_TIMEOUT_MS = 30_000;

const Pending = z.object({
	jobs: z.number(),
	jobs_touched: z.number(),
	deliveries: z.number(),
	events: z.number(),
	listings: z.number(),
});

/** What is left to do, as D1 and the harness show it. */
async function look() {
	const rows = await env.DB.prepare(
		`SELECT (SELECT count(*) FROM jobs) AS jobs,
			(SELECT total(updated_at) FROM jobs) AS jobs_touched,
			(SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS deliveries,
			(SELECT count(*) FROM webhook_events WHERE dispatched_at IS NULL) AS events,
			(SELECT count(*) FROM batches WHERE status = 'listing') AS listings`,
	)
		.first()
		.then(parseRow(Pending));
	return { ...rows, running: queueWork.running, started: queueWork.started, delayedUntil: queueWork.delayedUntil };
}
type Look = Awaited<ReturnType<typeof look>>;

/**
 * Nothing running and nothing owed: no queue batch in a handler, no message sent back with a delay
 * still to come (unless `waitForDelayed` is false), no delivery, fan-out or listing to come.
 */
const idle = (l: Look, waitForDelayed: boolean) =>
	l.running === 0 &&
	(!waitForDelayed || l.delayedUntil + SETTLE_MS <= Date.now()) &&
	l.deliveries === 0 &&
	l.events === 0 &&
	l.listings === 0;

/**
 * Waits until the runtime is quiet: no queue handler running or started and no job row written for
 * SETTLE_MS, with no webhook delivery pending, no event waiting for its fan-out, no batch listing,
 * and every message a handler sent back with a delay come back. A job left queued or leased on
 * purpose by a test (its message never sent to a real queue) does not hold it up; one whose message
 * is on a queue is claimed within SETTLE_MS. A message sent back for longer than the wait fails the
 * file at once; with `waitForDelayed` false, messages sent back with a delay are not waited for.
 */
async function untilQuiet(waitForDelayed: boolean): Promise<void> {
	const deadline = Date.now() + QUIET_TIMEOUT_MS;
	let before = await look();
	if (waitForDelayed && before.delayedUntil > deadline) {
		throw new Error(
			`the files before sent a message back to a queue for ${Math.ceil((before.delayedUntil - Date.now()) / 1000)} s more: such a file must be the last QUIET_START file of its runtime (LAST in vitest.config.ts)`,
		);
	}
	for (;;) {
		await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
		const after = await look();
		if (idle(before, waitForDelayed) && idle(after, waitForDelayed) && JSON.stringify(before) === JSON.stringify(after))
			return;
		if (Date.now() > deadline) {
			throw new Error(`the files before left work running after ${QUIET_TIMEOUT_MS} ms: ${JSON.stringify(after)}`);
		}
		before = after;
	}
}

/**
 * Forgets the lane scheduler's schedules and recent grants (its state is in memory only), as a
 * fresh runtime has none: every caption takes its slots there.
 */
async function resetScheduler(): Promise<void> {
	const scheduler = env.MODEL_SCHEDULER.getByName(SCHEDULER_NAME);
	// Only a running object can be evicted: a read makes sure it runs.
	await scheduler.stats();
	await evictDurableObject(scheduler);
}

/**
 * Waits for the files before to finish their work (`untilQuiet`), then starts from the storage,
 * emulator, registry and scheduler of a fresh runtime.
 */
export async function quietStart({ waitForDelayed = true } = {}): Promise<void> {
	await untilQuiet(waitForDelayed);
	await freshStorage();
	await resetModels();
	await resetScheduler();
}
