/**
 * What became of queue messages: a batch whose messages report their outcome (ack, or retry with
 * its delay) while still acking or retrying the real ones. getQueueResult() does not report retry
 * delays, and the real queues report nothing, so tests observe outcomes here instead of sleeping.
 */

export type MessageOutcome = { kind: "ack" } | { kind: "retry"; delaySeconds: number | undefined };

export function observeOutcomes<Body>(
	batch: MessageBatch<Body>,
	onOutcome: (message: Message<Body>, outcome: MessageOutcome) => void,
): MessageBatch<Body> {
	const messages = batch.messages.map(
		(message): Message<Body> => ({
			get id() {
				return message.id;
			},
			get timestamp() {
				return message.timestamp;
			},
			get body() {
				return message.body;
			},
			get attempts() {
				return message.attempts;
			},
			ack: () => {
				onOutcome(message, { kind: "ack" });
				message.ack();
			},
			retry: (options?: QueueRetryOptions) => {
				onOutcome(message, { kind: "retry", delaySeconds: options?.delaySeconds });
				message.retry(options);
			},
		}),
	);
	return {
		queue: batch.queue,
		metadata: batch.metadata,
		messages,
		ackAll: () => batch.ackAll(),
		retryAll: (options?: QueueRetryOptions) => {
			for (const message of batch.messages) onOutcome(message, { kind: "retry", delaySeconds: options?.delaySeconds });
			batch.retryAll(options);
		},
	};
}

/** A message the real queues delivered to the test harness (test/harness.ts), with its outcome. */
export interface HandledMessage {
	queue: string;
	body: unknown;
	outcome: MessageOutcome;
}

/** Every message the harness has handled so far, in order. */
export const handledMessages: HandledMessage[] = [];
