/**
 * Sending queue messages. A message that points to a D1 row (a queued job, an undispatched event,
 * a pending delivery) is sent after the row is written, and the row is the source of truth: if the
 * send fails, the sweeper of the receiving Worker finds the row and sends it again. So such a send
 * is logged when it fails and the caller goes on; answering 500, or retrying, would invite a
 * duplicate job or delivery.
 */
import { errorMessage, log } from "../log";

/** Sends one message; a failure is logged with `context` (the queue, the row's id) and left to the sweeper. */
export async function sendOrLeaveToSweeper(
	queue: Queue,
	message: MessageSendRequest,
	context: { queue: string } & Record<string, unknown>,
): Promise<void> {
	try {
		await queue.send(message.body, message.contentType ? { contentType: message.contentType } : undefined);
	} catch (err) {
		log("warn", "queue_send_failed", { ...context, error: errorMessage(err) });
	}
}

/** Queues take at most 100 messages per sendBatch. */
const SEND_BATCH_LIMIT = 100;

/** Sends JSON bodies in as few sendBatch calls as the limit allows; a failure throws. */
export async function sendAll(queue: Queue, bodies: readonly unknown[]): Promise<void> {
	for (let i = 0; i < bodies.length; i += SEND_BATCH_LIMIT) {
		const chunk = bodies.slice(i, i + SEND_BATCH_LIMIT);
		await queue.sendBatch(chunk.map((body) => ({ body, contentType: "json" as const })));
	}
}
