/**
 * The one way every consumer here runs a batch (`caption-jobs`, `webhook-deliveries` and their
 * dead-letter queues): messages are handled concurrently up to a limit, each ends in an explicit
 * outcome (ack, or retry with a delay), an unexpected error retries that message alone while the
 * batch goes on, a dead-letter queue's batch goes to the dead-letter handler, and the counts the
 * handlers keep are written once per batch.
 */
import { incrementCounters } from "../counters";
import { errorMessage, log } from "../log";
import { mapConcurrent } from "./concurrency";
import { MAX_DELAY_SECONDS } from "./delays";

export { MAX_DELAY_SECONDS } from "./delays";

/**
 * What becomes of a message: acknowledged (its work is done, or failed for good with that recorded
 * in D1), or delivered again after `delaySeconds` (transient trouble, or waiting on another lease).
 */
export type Outcome = { kind: "ack" } | { kind: "retry"; delaySeconds: number };

export const ACK: Outcome = { kind: "ack" };
/** A retry after `delaySeconds`, in whole seconds from 0 to MAX_DELAY_SECONDS. */
export const retryAfter = (delaySeconds: number): Extract<Outcome, { kind: "retry" }> => ({
	kind: "retry",
	delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds))),
});

/** Counts of messages that left nothing in D1 (invalid, ignored, duplicate), by counter name. */
export class BatchCounters {
	readonly counts = new Map<string, number>();

	add(name: string): void {
		this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
	}
}

export type MessageHandler = (message: Message<unknown>, counters: BatchCounters) => Promise<Outcome>;

export interface QueueConsumer {
	/** Messages handled at once. */
	concurrency: number;
	/** Where the batch's counters are written. */
	db: D1Database;
	/** The handler for messages of the queue itself; made once per batch. */
	live: () => MessageHandler;
	/** The handler for messages of its dead-letter queue (named `<queue>-dlq`); made once per batch. */
	deadLetter: () => MessageHandler;
}

export const isDeadLetterQueue = (queue: string): boolean => queue.endsWith("-dlq");

/** An unexpected error's message is retried soon, then more slowly; after max_retries it is dead-lettered. */
export const unexpectedErrorDelay = (attempts: number): number => Math.min(60, 2 ** attempts);

export async function runBatch(batch: MessageBatch<unknown>, consumer: QueueConsumer): Promise<void> {
	const handle = isDeadLetterQueue(batch.queue) ? consumer.deadLetter() : consumer.live();
	const counters = new BatchCounters();
	await mapConcurrent(batch.messages, consumer.concurrency, async (message) => {
		let outcome: Outcome;
		try {
			outcome = await handle(message, counters);
		} catch (err) {
			// D1 or R2 unavailable, a bug: this message alone is retried; the batch goes on.
			log("error", "message_failed", { queue: batch.queue, message_id: message.id, error: errorMessage(err) });
			outcome = retryAfter(unexpectedErrorDelay(message.attempts));
		}
		settle(message, outcome);
	});
	await incrementCounters(consumer.db, counters.counts).catch((err) =>
		log("error", "counters_failed", { queue: batch.queue, error: errorMessage(err) }),
	);
}

function settle(message: Message<unknown>, outcome: Outcome): void {
	switch (outcome.kind) {
		case "ack":
			message.ack();
			return;
		case "retry":
			message.retry({ delaySeconds: outcome.delaySeconds });
			return;
	}
}
