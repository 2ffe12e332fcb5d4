/**
 * Classification of Workers AI errors (docs/models.md, reviewed against the published error table,
 * developers.cloudflare.com/workers-ai/platform/errors). Workers AI throws an Error whose message
 * starts with a numeric code, e.g. "3040: Capacity temporarily exceeded".
 *
 * What each kind does to a job and to the model's health (shared/models/health.ts):
 * - `gone`: this account cannot use the model → the next model; the model is skipped by every
 *   consumer for the long cool-down.
 * - `too_large`: the request is too large for this model → the next model; the model is healthy.
 * - `input`: the request itself is invalid → the job fails (`model_error`); the model is healthy.
 * - `transient`: worth retrying → the message is retried with backoff; counts toward the circuit.
 * - `failure`: anything else, including codes no document lists → the next model; counts toward
 *   the circuit.
 */

export type ModelErrorKind = "gone" | "too_large" | "input" | "transient" | "failure";

export interface ClassifiedError {
	kind: ModelErrorKind;
	code: number | null;
	message: string;
}

/**
 * No such model (5007), invalid model id (3042), model agreement not accepted (5016), paid plan
 * only (5035), private model (5018, 3041), deprecated SDK (5019): nothing this service sends would
 * change the answer until someone changes the account or the chain. A retired model answers
 * `5028: This model was deprecated` (reported in github.com/cloudflare/cloudflare-docs/issues/32501;
 * the published error table does not list it yet); `5031: model has been deprecated` is the
 * wording this service's emulator used before that report, kept so either retires the model.
 */
const GONE = new Set([5007, 3042, 5016, 5035, 5018, 3041, 5019, 5028, 5031]);
/** Request too large (3006, HTTP 413): another model may take a smaller request, or the image. */
const TOO_LARGE = new Set([3006]);
/** Invalid data (5004), schema violation (5006), incomplete request (3003), no LoRA support (5005). */
const INPUT = new Set([5004, 5006, 3003, 5005]);
/** Capacity (3040), requests per minute (3021), timeout (3007), aborted (3008), daily allocation (3036). */
const TRANSIENT = new Set([3040, 3021, 3007, 3008, 3036]);

export function classifyModelError(err: unknown): ClassifiedError {
	const message = err instanceof Error ? err.message : String(err);
	const match = /^(?:[A-Za-z]*Error:\s*)?(\d{4})\b/.exec(message);
	const code = match?.[1] ? Number(match[1]) : null;
	// No Workers AI code: an HTTP 429/5xx, a network failure reaching the service, or something
	// unexpected. Retrying is the safe choice: retries end in retries_exhausted, never in a loop.
	if (code === null) return { kind: "transient", code, message };
	if (GONE.has(code)) return { kind: "gone", code, message };
	if (TOO_LARGE.has(code)) return { kind: "too_large", code, message };
	if (INPUT.has(code)) return { kind: "input", code, message };
	if (TRANSIENT.has(code)) return { kind: "transient", code, message };
	return { kind: "failure", code, message };
}
