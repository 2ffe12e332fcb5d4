/** What follows each model's turn in the fallback chain (shared/models/chain-policy.ts), case by case. */
import { describe, expect, it } from "vitest";
import { nextTurn, type PassedOver, type TurnOutcome, whenExhausted } from "../../shared/models/chain-policy";
import type { ClassifiedError, ModelErrorKind } from "../../shared/models/errors";

const NOW = Date.UTC(2026, 0, 1);
const MODEL = "@cf/test/model";

function failed(kind: ModelErrorKind, code: number | null, callable: boolean, retryAt = NOW + 60_000): TurnOutcome {
	const error: ClassifiedError = { kind, code, message: `${code ?? "no code"}: trouble` };
	return { kind: "error", model: MODEL, error, callable, retryAt };
}

function passedOver(overrides: Partial<PassedOver>): PassedOver {
	return { model: MODEL, reason: "why", gone: false, tooLarge: false, retryAt: NOW, ...overrides };
}

describe("the chain's next turn", () => {
	it("a model the registry skips is passed over until its retry time, gone or only skipped", () => {
		const retryAt = NOW + 30_000;
		expect(nextTurn({ kind: "skipped", model: MODEL, gone: true, retryAt }, NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "gone until 2026-01-01T00:00:30.000Z", gone: true, tooLarge: false, retryAt },
		});
		expect(nextTurn({ kind: "skipped", model: MODEL, gone: false, retryAt }, NOW)).toEqual({
			kind: "next",
			passedOver: {
				model: MODEL,
				reason: "skipped until 2026-01-01T00:00:30.000Z",
				gone: false,
				tooLarge: false,
				retryAt,
			},
		});
	});

	it("no rate-limit slot soon enough ends the chain with a retry after the limiter's wait", () => {
		expect(nextTurn({ kind: "paced", message: "pacing", retryAfterSeconds: 7 }, NOW)).toEqual({
			kind: "done",
			outcome: { kind: "retry", message: "pacing", minDelaySeconds: 7 },
		});
	});

	it("an answer is the caption, trimmed; an empty answer fails the job as a refusal", () => {
		expect(nextTurn({ kind: "answered", model: MODEL, caption: "  a cat \n" }, NOW)).toEqual({
			kind: "done",
			outcome: { kind: "captioned", model: MODEL, caption: "a cat" },
		});
		expect(nextTurn({ kind: "answered", model: MODEL, caption: " \n" }, NOW)).toEqual({
			kind: "done",
			outcome: { kind: "refused", message: `${MODEL} returned an empty caption.` },
		});
	});

	it("an answer in an unexpected shape fails the job as a refusal", () => {
		expect(nextTurn({ kind: "malformed", model: MODEL }, NOW)).toEqual({
			kind: "done",
			outcome: { kind: "refused", message: `${MODEL} answered in an unexpected shape.` },
		});
	});

	it("an input error fails the job: another model would be sent the same request", () => {
		expect(nextTurn(failed("input", 5006, true), NOW)).toEqual({
			kind: "done",
			outcome: { kind: "refused", message: `${MODEL} refused the request: 5006: trouble` },
		});
	});

	it("a request too large for the model passes to the next model, which may be called now", () => {
		expect(nextTurn(failed("too_large", 3006, true), NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "3006: trouble", gone: false, tooLarge: true, retryAt: NOW },
		});
	});

	it("a gone model passes to the next model, gone until the registry's retry time", () => {
		expect(nextTurn(failed("gone", 5007, false, NOW + 3_600_000), NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "5007: trouble", gone: true, tooLarge: false, retryAt: NOW + 3_600_000 },
		});
	});

	it("a transient error retries on the same model while it takes calls (a 3021 after ten seconds at least)", () => {
		expect(nextTurn(failed("transient", 3040, true), NOW)).toEqual({
			kind: "done",
			outcome: { kind: "retry", message: `${MODEL}: 3040: trouble`, minDelaySeconds: 0 },
		});
		expect(nextTurn(failed("transient", 3021, true), NOW)).toEqual({
			kind: "done",
			outcome: { kind: "retry", message: `${MODEL}: 3021: trouble`, minDelaySeconds: 10 },
		});
	});

	it("a transient error that opened the model's circuit passes to the next model until the circuit's retry time", () => {
		expect(nextTurn(failed("transient", 3040, false, NOW + 5_000), NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "3040: trouble", gone: false, tooLarge: false, retryAt: NOW + 5_000 },
		});
	});

	it("any other failure passes to the next model: callable again now, or when its circuit's cool-down ends", () => {
		expect(nextTurn(failed("failure", 5031, true, NOW + 5_000), NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "5031: trouble", gone: false, tooLarge: false, retryAt: NOW },
		});
		expect(nextTurn(failed("failure", 5031, false, NOW + 5_000), NOW)).toEqual({
			kind: "next",
			passedOver: { model: MODEL, reason: "5031: trouble", gone: false, tooLarge: false, retryAt: NOW + 5_000 },
		});
	});
});

describe("the chain's answer when every model was passed over", () => {
	it("a request too large for one model, and no model left, fails the job as image_too_large", () => {
		const outcome = whenExhausted(
			[passedOver({ model: "a", reason: "3006: too large", tooLarge: true }), passedOver({ model: "b", gone: true })],
			NOW,
		);
		expect(outcome).toEqual({
			kind: "too_large",
			message: "The request is too large for the models of the chain: a: 3006: too large; b: why.",
		});
	});

	it("a request too large for one model while another is only skipped for a while retries when that one may be called", () => {
		// moondream answered 3006; scout, which takes larger images, has its circuit open for 60 s.
		const outcome = whenExhausted(
			[
				passedOver({ model: "moondream", reason: "3006: too large", tooLarge: true }),
				passedOver({ model: "scout", reason: "skipped until later", retryAt: NOW + 60_000 }),
			],
			NOW,
		);
		expect(outcome).toEqual({
			kind: "retry",
			message: "No model in the chain can caption now: moondream: 3006: too large; scout: skipped until later",
			minDelaySeconds: 60,
		});
	});

	it("the retry waits for the soonest model passed over for a passing reason, not for a too-large or gone one", () => {
		const outcome = whenExhausted(
			[
				passedOver({ model: "a", tooLarge: true, retryAt: NOW }),
				passedOver({ model: "b", gone: true, retryAt: NOW + 5_000 }),
				passedOver({ model: "c", retryAt: NOW + 20_000 }),
				passedOver({ model: "d", retryAt: NOW + 45_000 }),
			],
			NOW,
		);
		expect(outcome).toMatchObject({ kind: "retry", minDelaySeconds: 20 });
		// A model whose transient error or failure left it callable may be called again at once.
		expect(
			whenExhausted([passedOver({ model: "a", tooLarge: true }), passedOver({ model: "b", retryAt: NOW })], NOW),
		).toMatchObject({ kind: "retry", minDelaySeconds: 0 });
	});

	it("too large for every model that is not gone fails the job as image_too_large", () => {
		const outcome = whenExhausted(
			[
				passedOver({ model: "a", reason: "3006: too large", tooLarge: true }),
				passedOver({ model: "b", reason: "3006: too large", tooLarge: true }),
				passedOver({ model: "c", gone: true, retryAt: NOW + 3_600_000 }),
			],
			NOW,
		);
		expect(outcome).toMatchObject({ kind: "too_large" });
	});

	it("every model gone fails the job as model_unavailable", () => {
		const outcome = whenExhausted(
			[passedOver({ model: "a", gone: true, retryAt: NOW + 1000 }), passedOver({ model: "b", gone: true })],
			NOW,
		);
		expect(outcome).toEqual({ kind: "unavailable", message: "No model in the chain is available: a: why; b: why." });
	});

	it("a model only busy retries the message when the soonest model may be called again", () => {
		const outcome = whenExhausted(
			[
				passedOver({ model: "a", gone: true, retryAt: NOW + 60_000 }),
				passedOver({ model: "b", retryAt: NOW + 12_500 }),
				passedOver({ model: "c", retryAt: NOW + 30_000 }),
			],
			NOW,
		);
		expect(outcome).toEqual({
			kind: "retry",
			message: "No model in the chain can caption now: a: why; b: why; c: why",
			minDelaySeconds: 13,
		});
		// A retry time already past asks for no wait.
		expect(whenExhausted([passedOver({ retryAt: NOW - 5_000 })], NOW)).toMatchObject({ minDelaySeconds: 0 });
	});
});
