/**
 * The fallback chain: tries the configured models in order. Before each call it asks the shared
 * model-health registry whether the model may be called (a gone model or an open circuit is
 * skipped by every batch) and waits for a slot of the model's rate limit; after it, it tells the
 * registry what the call showed. What follows each model's turn (the caption, the next model, or
 * the end of the chain) is decided by ./chain-policy.ts; the chain answers a `ChainOutcome`.
 */
import { log } from "../log";
import { isEnglish } from "../outputs/spec";
import { type ChainOutcome, nextTurn, type PassedOver, type TurnOutcome, whenExhausted } from "./chain-policy";
import { type ClassifiedError, classifyModelError } from "./errors";
import type { CallOutcome } from "./health";
import type { Admission, AfterCall, CallRecord } from "./health-registry";
import type { AiRunner, ImageLimits, ModelAdapter, ModelImage, ModelRequest } from "./types";
import { addUsage, readUsage, type Usage } from "./usage";

export type { ChainOutcome } from "./chain-policy";

/**
 * The chain's answer with the time its models spent on the request and the tokens their answers
 * reported (summed over the calls that answered; null when none reported any).
 */
export type Captioning = ChainOutcome & { inferenceMs: number; usage: Usage | null };

/** The consumer's side of the model-health registry. */
export interface ModelHealthGate {
	admit(model: string): Promise<Admission>;
	record(model: string, call: CallRecord): Promise<AfterCall>;
	abandon(model: string): Promise<void>;
}

/** Whether a model call may go now (after any wait the pacer did), or only later. */
export type Pace = { kind: "go" } | { kind: "later"; message: string; retryAfterSeconds: number };

/** Awaited before every model call (rate pacing). */
export type Pacer = (adapter: ModelAdapter) => Promise<Pace>;

/**
 * How one caption goes through the chain when its caller decides (the lane scheduler's hook): the
 * models in the order to try them, and the pacer that gets their slots.
 */
export interface Route {
	adapters: readonly ModelAdapter[];
	pace: Pacer;
}

/** Prepares the image for a model's limits; its errors are the caller's and pass through. */
export type Prepare = (limits: ImageLimits) => Promise<ModelImage>;

/**
 * What a failed call tells the model's health: an answer about the request says the model works; a
 * failure names the API key whose request it was (`keyId`), so one key alone cannot open the circuit.
 */
function healthOutcome(error: ClassifiedError, keyId: string | null): CallOutcome {
	switch (error.kind) {
		case "gone":
			return { kind: "gone", error: error.message };
		case "input":
		case "too_large":
			return { kind: "answered" };
		case "transient":
		case "failure":
			return { kind: "failed", error: error.message, key: keyId };
	}
}

/**
 * How long a batch keeps the registry's "call" answer for a model that works: the registry is
 * asked once a second per batch rather than per message. A skip is kept until its retry time.
 */
const CALL_ADMISSION_MS = 1000;

export class ModelChain {
	/** The registry's answers this batch holds on to, by model. */
	private readonly admissions = new Map<string, { admission: Admission; until: number }>();
	/** Questions to the registry in flight, shared by the messages that need the same answer. */
	private readonly asking = new Map<string, Promise<Admission>>();

	constructor(
		private readonly ai: AiRunner,
		private readonly adapters: readonly ModelAdapter[],
		private readonly health: ModelHealthGate,
		private readonly pace: Pacer = async () => ({ kind: "go" }),
	) {}

	/**
	 * Captions an image. `prepare` brings the image within a model's limits; it is called once per
	 * distinct set of limits.
	 */
	async caption(prepare: Prepare, request: ModelRequest, route?: Route): Promise<Captioning> {
		const images = new PreparedImages(prepare);
		const passedOver: PassedOver[] = [];
		const pace = route?.pace ?? this.pace;
		let inferenceMs = 0;
		let usage: Usage | null = null;
		// A model that cannot write the job's language is not asked at all (docs/models.md).
		const able = (route?.adapters ?? this.adapters).filter(
			(a) => a.languages === "any" || isEnglish(request.language ?? null),
		);
		if (able.length === 0) {
			return {
				kind: "unavailable",
				message: `No model of the chain writes the language ${request.language}`,
				inferenceMs,
				usage,
			};
		}
		for (const adapter of able) {
			const turn = await this.turn(adapter, images, request, pace);
			inferenceMs += turn.latencyMs;
			usage = addUsage(usage, turn.usage);
			const next = nextTurn(turn.outcome, Date.now());
			if (next.kind === "done") return { ...next.outcome, inferenceMs, usage };
			passedOver.push(next.passedOver);
		}
		return { ...whenExhausted(passedOver, Date.now()), inferenceMs, usage };
	}

	/** One model's turn: admission, input, pacing, the call, and what the registry learns of it. */
	private async turn(
		adapter: ModelAdapter,
		images: PreparedImages,
		request: ModelRequest,
		pace: Pacer,
	): Promise<{ outcome: TurnOutcome; latencyMs: number; usage: Usage | null }> {
		const model = adapter.id;
		const admission = await this.admit(model);
		if (!admission.call) {
			const outcome: TurnOutcome = { kind: "skipped", model, gone: admission.gone, retryAt: admission.retryAt };
			return { outcome, latencyMs: 0, usage: null };
		}
		const ready = await this.ready(adapter, images, request, admission.probe, pace);
		if (ready.kind === "later") {
			return {
				outcome: { kind: "paced", message: ready.message, retryAfterSeconds: ready.retryAfterSeconds },
				latencyMs: 0,
				usage: null,
			};
		}
		const started = Date.now();
		let output: unknown;
		try {
			output = await this.ai.run(model, ready.input);
		} catch (err) {
			const latencyMs = Date.now() - started;
			const failure = await this.failed(model, classifyModelError(err), latencyMs, admission.probe, request.keyId);
			return { outcome: failure, latencyMs, usage: null };
		}
		const latencyMs = Date.now() - started;
		await this.record(model, { outcome: { kind: "answered" }, ok: true, latencyMs, probe: admission.probe });
		// An answer costs its tokens whether or not its caption is usable.
		const usage = readUsage(output);
		try {
			return { outcome: { kind: "answered", model, caption: adapter.readCaption(output) }, latencyMs, usage };
		} catch {
			return { outcome: { kind: "malformed", model }, latencyMs, usage };
		}
	}

	/** The model's input, once the rate limiter gives a slot; a probe no call follows is handed back. */
	private async ready(
		adapter: ModelAdapter,
		images: PreparedImages,
		request: ModelRequest,
		probe: boolean,
		pacer: Pacer,
	): Promise<{ kind: "go"; input: Record<string, unknown> } | Extract<Pace, { kind: "later" }>> {
		try {
			const input = adapter.buildInput(await images.for(adapter.limits), request);
			// The wait for a slot is not inference time: inference_ms stays the model's own latency.
			const pace = await pacer(adapter);
			if (pace.kind === "later") {
				if (probe) await this.health.abandon(adapter.id);
				return pace;
			}
			return { kind: "go", input };
		} catch (err) {
			// No call will be made: let another caller probe the model.
			if (probe) await this.health.abandon(adapter.id);
			throw err;
		}
	}

	/** Records a failed call with the registry and logs it; the turn's outcome carries the registry's answer. */
	private async failed(
		model: string,
		error: ClassifiedError,
		latencyMs: number,
		probe: boolean,
		keyId: string | null,
	): Promise<TurnOutcome> {
		const after = await this.record(model, { outcome: healthOutcome(error, keyId), ok: false, latencyMs, probe });
		log("warn", "model_call_failed", {
			model,
			code: error.code,
			kind: error.kind,
			probe,
			callable: after.callable,
			error: error.message,
		});
		return { kind: "error", model, error, callable: after.callable, retryAt: after.retryAt };
	}

	/** The registry's answer for `model`, from this batch's memory when it still holds. */
	private async admit(model: string): Promise<Admission> {
		const held = this.admissions.get(model);
		if (held && held.until > Date.now()) return held.admission;
		const asked = this.asking.get(model);
		if (asked) {
			const shared = await asked;
			// A skip or a plain "call" holds for every message; a probe is for the message that asked.
			if (!shared.call || !shared.probe) return shared;
		}
		const asking = this.health.admit(model);
		this.asking.set(model, asking);
		try {
			const admission = await asking;
			if (!admission.call) this.admissions.set(model, { admission, until: admission.retryAt });
			else if (!admission.probe) this.admissions.set(model, { admission, until: Date.now() + CALL_ADMISSION_MS });
			return admission;
		} finally {
			if (this.asking.get(model) === asking) this.asking.delete(model);
		}
	}

	/** Tells the registry what a call showed, and remembers its answer for the rest of the batch. */
	private async record(model: string, call: CallRecord): Promise<AfterCall> {
		const after = await this.health.record(model, call);
		if (!after.callable) {
			this.admissions.set(model, {
				admission: { call: false, gone: after.gone, retryAt: after.retryAt },
				until: after.retryAt,
			});
		} else if (call.probe) {
			this.admissions.set(model, { admission: { call: true, probe: false }, until: Date.now() + CALL_ADMISSION_MS });
		}
		return after;
	}
}

/** The image prepared once per distinct set of model limits, shared by the models that have them. */
class PreparedImages {
	private readonly byLimits = new Map<string, Promise<ModelImage>>();
	constructor(private readonly prepare: Prepare) {}

	for(limits: ImageLimits): Promise<ModelImage> {
		const key = `${limits.maxBytes}/${limits.maxSide}`;
		let image = this.byLimits.get(key);
		if (!image) {
			image = this.prepare(limits);
			this.byLimits.set(key, image);
		}
		return image;
	}
}
