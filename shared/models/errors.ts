/**
 * Classification of Workers AI errors (SPEC §4). Workers AI throws an Error whose message starts
 * with a numeric code, e.g. "3040: Capacity temporarily exceeded".
 */

export type ModelErrorKind = "gone" | "transient" | "permanent";

export interface ClassifiedError {
	kind: ModelErrorKind;
	code: number | null;
	message: string;
}

/** The model does not exist (any more): move on to the next model in the chain. */
const GONE = new Set([5007, 3042]);
/** Worth retrying later: capacity, rate limits, timeouts, aborted requests, daily quota. */
const TRANSIENT = new Set([3040, 3021, 3007, 3008, 3036]);

export function classifyModelError(err: unknown): ClassifiedError {
	const message = err instanceof Error ? err.message : String(err);
	const match = /^(?:[A-Za-z]*Error:\s*)?(\d{4})\b/.exec(message);
	const code = match?.[1] ? Number(match[1]) : null;
	if (code !== null && GONE.has(code)) return { kind: "gone", code, message };
	if (code !== null && TRANSIENT.has(code)) return { kind: "transient", code, message };
	if (code !== null) return { kind: "permanent", code, message };
	// No Workers AI code: an HTTP 429/5xx, a network failure reaching the service, or something
	// unexpected. Retrying is the safe choice: retries end in retries_exhausted, never in a loop.
	return { kind: "transient", code: null, message };
}
