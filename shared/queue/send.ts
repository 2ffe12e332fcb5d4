/**
 * Sending to `caption-jobs` after the job row is written. The row is the source of truth: if the
 * send fails, the job stays `queued` and the consumer's sweeper sends it again, so the request
 * still succeeds (answering 500 would invite a retry that makes a duplicate job).
 */
import { errorMessage, log } from "../log";

export async function sendOrLeaveToSweeper(queue: Queue, body: unknown): Promise<void> {
	try {
		await queue.send(body);
	} catch (err) {
		log("warn", "queue_send_failed", { queue: "caption-jobs", error: errorMessage(err) });
	}
}
