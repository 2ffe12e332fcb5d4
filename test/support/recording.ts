/**
 * Bindings that pass every call on to the real ones and note what went through: a queue whose
 * sends are kept (and go to `held-messages`, which nothing consumes, so the test delivers them),
 * and a bucket whose writes are counted and whose first `failPuts` writes fail as R2 fails.
 */
import { env } from "cloudflare:workers";

export function recordingQueue(): { queue: Queue; sent: unknown[] } {
	const held = env.HELD_MESSAGES;
	const sent: unknown[] = [];
	const queue: Queue = {
		metrics: () => held.metrics(),
		send: (body, options) => {
			sent.push(body);
			return held.send(body, options);
		},
		sendBatch: (messages, options) => {
			const list = [...messages];
			sent.push(...list.map((m) => m.body));
			return held.sendBatch(list, options);
		},
	};
	return { queue, sent };
}

/** R2's answer to a write it could not do this time (an internal error, worth retrying). */
const R2_INTERNAL_ERROR = "put: We encountered an internal error. Please try again. (10001)";

/** The bucket, counting its puts; the first `failPuts` fail with `error` (R2's internal error unless told). */
export function countingBucket(
	bucket: R2Bucket,
	failPuts = 0,
	error = R2_INTERNAL_ERROR,
): { bucket: R2Bucket; puts: string[] } {
	const puts: string[] = [];
	let failing = failPuts;
	const counted = new Proxy(bucket, {
		get(target, prop) {
			if (prop === "put") {
				return async (...args: Parameters<R2Bucket["put"]>) => {
					puts.push(args[0]);
					if (failing > 0) {
						failing--;
						throw new Error(error);
					}
					return target.put(...args);
				};
			}
			const value: unknown = Reflect.get(target, prop);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { bucket: counted, puts };
}
