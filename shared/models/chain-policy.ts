/**
 * What follows one step of the fallback chain (./chain.ts), decided from that step's outcome alone:
 * the caption, the next model (with why this one was passed over), or the end of the chain with
 * the job's fate. And, once every model was passed over, what the chain as a whole answers. Pure:
 * the chain does the calls, the registry questions and the logging; this module only decides.
 *
 * What each kind of model error does (./errors.ts):
 * - `input`: the request itself is invalid → the job fails (`model_error`);
 * - `too_large`: the next model, which may take a smaller request or the image (the job fails
 *   `image_too_large` only if no model that could still take it is left: `whenExhausted`);
 * - `gone`: the next model; the registry skips this one for the long cool-down;
 * - `transient`: a retry of the message on the same model while the model still takes calls,
 *   else the next model;
 * - `failure`: not about the input, not a known passing trouble: the next model may do better.
 */
import type { ClassifiedError } from "./errors";

/** How one model's turn in the chain went. */
export type TurnOutcome =
	/** The registry said not to call the model before `retryAt` (gone, or its circuit open). */
	| { kind: "skipped"; model: string; gone: boolean; retryAt: number }
	/** The rate limiter has no slot soon enough: the message waits, its job back in the queue. */
	| { kind: "paced"; message: string; retryAfterSeconds: number }
	/** The model answered with this caption (not yet trimmed). */
	| { kind: "answered"; model: string; caption: string }
	/** The model answered, but not in its documented shape. */
	| { kind: "malformed"; model: string }
	/**
	 * The call failed with `error`; `callable` and `retryAt` are the registry's answer after it
	 * recorded the failure (whether the model still takes calls, and if not, from when).
	 */
	| { kind: "error"; model: string; error: ClassifiedError; callable: boolean; retryAt: number };

/** What the chain answers for one request: a caption or the reason there is none. */
export type ChainOutcome =
	| { kind: "captioned"; model: string; caption: string }
	/** A model refused the request or answered nonsense: the job fails (`model_error`). */
	| { kind: "refused"; message: string }
	/**
	 * The request is too large for the chain (`image_too_large`): a model found it too large, and
	 * every other one did too or is gone (none was only passed over for a while).
	 */
	| { kind: "too_large"; message: string }
	/** No model of the chain is available to this account (`model_unavailable`). */
	| { kind: "unavailable"; message: string }
	/** Worth another attempt later, not before `minDelaySeconds`. */
	| { kind: "retry"; message: string; minDelaySeconds: number };

/** Why a model was passed over; gathered model by model for the chain's final answer. */
export interface PassedOver {
	model: string;
	reason: string;
	/** The model is gone for this account (not only busy or broken for a while). */
	gone: boolean;
	/** The request was too large for the model. */
	tooLarge: boolean;
	/** When the model may be called again (ms since the epoch). */
	retryAt: number;
}

export type NextTurn = { kind: "next"; passedOver: PassedOver } | { kind: "done"; outcome: ChainOutcome };

/** Workers AI's 3021 (requests per minute) asks for a pause: retrying sooner only earns another. */
const RATE_LIMITED_RETRY_SECONDS = 10;

/** What follows a model's turn; `now` is the clock when the turn ended (ms). */
export function nextTurn(turn: TurnOutcome, now: number): NextTurn {
	switch (turn.kind) {
		case "skipped": {
			const until = new Date(turn.retryAt).toISOString();
			const reason = turn.gone ? `gone until ${until}` : `skipped until ${until}`;
			return next(turn.model, reason, { gone: turn.gone, retryAt: turn.retryAt });
		}
		case "paced":
			return done({ kind: "retry", message: turn.message, minDelaySeconds: turn.retryAfterSeconds });
		case "answered": {
			const caption = turn.caption.trim();
			if (!caption) return done({ kind: "refused", message: `${turn.model} returned an empty caption.` });
			return done({ kind: "captioned", model: turn.model, caption });
		}
		case "malformed":
			return done({ kind: "refused", message: `${turn.model} answered in an unexpected shape.` });
		case "error":
			return afterError(turn, now);
	}
}

function afterError(turn: Extract<TurnOutcome, { kind: "error" }>, now: number): NextTurn {
	const { model, error } = turn;
	switch (error.kind) {
		case "input":
			return done({ kind: "refused", message: `${model} refused the request: ${error.message}` });
		case "too_large":
			return next(model, error.message, { tooLarge: true, retryAt: now });
		case "gone":
			return next(model, error.message, { gone: true, retryAt: turn.retryAt });
		case "transient":
			// The model still takes calls: this one is worth repeating later, on the same model.
			if (turn.callable) {
				const minDelaySeconds = error.code === 3021 ? RATE_LIMITED_RETRY_SECONDS : 0;
				return done({ kind: "retry", message: `${model}: ${error.message}`, minDelaySeconds });
			}
			return next(model, error.message, { retryAt: turn.retryAt });
		case "failure":
			return next(model, error.message, { retryAt: turn.callable ? now : turn.retryAt });
	}
}

/**
 * The chain's answer once every model was passed over. A model passed over for a passing reason
 * (its circuit open, a transient error or another failure) may take the request later: the message
 * is retried when the soonest of those may be called again. Only when none is left, every model
 * having found the request too large or being gone, does a `3006` fail the job (`image_too_large`),
 * and without any `3006` the chain is unavailable (`model_unavailable`).
 */
export function whenExhausted(passedOver: readonly PassedOver[], now: number): ChainOutcome {
	const reasons = passedOver.map((p) => `${p.model}: ${p.reason}`).join("; ");
	const passing = passedOver.filter((p) => !p.gone && !p.tooLarge);
	if (passing.length === 0 && passedOver.some((p) => p.tooLarge)) {
		return { kind: "too_large", message: `The request is too large for the models of the chain: ${reasons}.` };
	}
	if (passing.length === 0) {
		return { kind: "unavailable", message: `No model in the chain is available: ${reasons}.` };
	}
	const retryAt = Math.min(...passing.map((p) => p.retryAt));
	const wait = Math.max(0, Math.ceil((retryAt - now) / 1000));
	return {
		kind: "retry",
		message: `No model in the chain can caption now: ${reasons}`,
		minDelaySeconds: wait,
	};
}

function next(model: string, reason: string, how: { gone?: boolean; tooLarge?: boolean; retryAt: number }): NextTurn {
	return {
		kind: "next",
		passedOver: { model, reason, gone: how.gone ?? false, tooLarge: how.tooLarge ?? false, retryAt: how.retryAt },
	};
}

function done(outcome: ChainOutcome): NextTurn {
	return { kind: "done", outcome };
}
