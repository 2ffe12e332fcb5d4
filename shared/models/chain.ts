/**
 * The fallback chain (SPEC §4): tries the configured models in order. Before each call it asks the
 * shared model-health registry whether the model may be called (a gone model or an open circuit is
 * skipped by every batch) and waits for a slot of the model's rate limit; after it, it tells the
 * registry what the call showed. What an error does to the job follows its kind (./errors.ts):
 * the next model, a retry of the message (`TransientError`), or a failed job (`JobFailure`).
 */
import { JobFailure, TransientError } from "../jobs/errors";
import { log } from "../log";
import { classifyModelError } from "./errors";
import type { CallOutcome } from "./health";
import type { Admission, AfterCall, CallRecord } from "./health-registry";
import type { AiRunner, ImageLimits, ModelAdapter, ModelImage, ModelRequest } from "./types";

export interface Caption {
	model: string;
	caption: string;
	inferenceMs: number;
}

/** The consumer's side of the model-health registry. */
export interface ModelHealthGate {
	admit(model: string): Promise<Admission>;
	record(model: string, call: CallRecord): Promise<AfterCall>;
	abandon(model: string): Promise<void>;
}

/** Awaited before every model call (rate pacing); may throw a TransientError to retry later. */
export type Pacer = (adapter: ModelAdapter) => Promise<void>;

/** Why the chain ended without a caption, gathered model by model. */
class Unavailable {
	readonly reasons: string[] = [];
	allGone = true;
	tooLarge: string | null = null;
	retryAt = Number.POSITIVE_INFINITY;

	skip(model: string, why: string, gone: boolean, retryAt: number): void {
		this.reasons.push(`${model}: ${why}`);
		if (!gone) this.allGone = false;
		this.retryAt = Math.min(this.retryAt, retryAt);
	}

	failure(): JobFailure | TransientError {
		const reasons = this.reasons.join("; ");
		if (this.tooLarge !== null) {
			return new JobFailure("image_too_large", `The request is too large for the models of the chain: ${reasons}.`);
		}
		if (this.allGone) return new JobFailure("model_unavailable", `No model in the chain is available: ${reasons}.`);
		const wait = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
		return new TransientError(`No model in the chain can caption now: ${reasons}`, Number.isFinite(wait) ? wait : 0);
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
		private readonly pace: Pacer = async () => {},
	) {}

	/**
	 * Captions an image. `prepare` brings the image within a model's limits; it is called once per
	 * distinct set of limits.
	 */
	async caption(prepare: (limits: ImageLimits) => Promise<ModelImage>, request: ModelRequest): Promise<Caption> {
		const prepared = new Map<string, Promise<ModelImage>>();
		const unavailable = new Unavailable();
		let inferenceMs = 0;
		for (const adapter of this.adapters) {
			const model = adapter.id;
			const admission = await this.admit(model);
			if (!admission.call) {
				const until = new Date(admission.retryAt).toISOString();
				unavailable.skip(
					model,
					admission.gone ? `gone until ${until}` : `skipped until ${until}`,
					admission.gone,
					admission.retryAt,
				);
				continue;
			}
			let input: Record<string, unknown>;
			try {
				const limitsKey = `${adapter.limits.maxBytes}/${adapter.limits.maxSide}`;
				let image = prepared.get(limitsKey);
				if (!image) {
					image = prepare(adapter.limits);
					prepared.set(limitsKey, image);
				}
				input = adapter.buildInput(await image, request);
				// The wait for a slot is not inference time: inference_ms stays the model's own latency.
				await this.pace(adapter);
			} catch (err) {
				// No call will be made: let another caller probe the model.
				if (admission.probe) await this.health.abandon(model);
				throw err;
			}
			const started = Date.now();
			let output: unknown;
			try {
				output = await this.ai.run(model, input);
			} catch (err) {
				const latencyMs = Date.now() - started;
				inferenceMs += latencyMs;
				const error = classifyModelError(err);
				const outcome: CallOutcome =
					error.kind === "gone"
						? { kind: "gone", error: error.message }
						: error.kind === "input" || error.kind === "too_large"
							? { kind: "answered" }
							: { kind: "failed", error: error.message, key: request.keyId };
				const after = await this.record(model, { outcome, ok: false, latencyMs, probe: admission.probe });
				log("warn", "model_call_failed", {
					model,
					code: error.code,
					kind: error.kind,
					probe: admission.probe,
					callable: after.callable,
					error: error.message,
				});
				switch (error.kind) {
					case "input":
						throw new JobFailure("model_error", `${model} refused the request: ${error.message}`);
					case "too_large":
						unavailable.tooLarge = error.message;
						unavailable.skip(model, error.message, false, Date.now());
						continue;
					case "gone":
						unavailable.skip(model, error.message, true, after.retryAt);
						continue;
					case "transient":
						// The model still takes calls: this one is worth repeating later, on the same model.
						if (after.callable) {
							throw new TransientError(`${model}: ${error.message}`, error.code === 3021 ? 10 : 0);
						}
						unavailable.skip(model, error.message, false, after.retryAt);
						continue;
					case "failure":
						// Not about the input, not a known passing trouble: the next model may do better.
						unavailable.skip(model, error.message, false, after.callable ? Date.now() : after.retryAt);
						continue;
				}
			}
			const latencyMs = Date.now() - started;
			inferenceMs += latencyMs;
			await this.record(model, { outcome: { kind: "answered" }, ok: true, latencyMs, probe: admission.probe });
			let caption: string;
			try {
				caption = adapter.readCaption(output).trim();
			} catch {
				throw new JobFailure("model_error", `${model} answered in an unexpected shape.`);
			}
			if (!caption) throw new JobFailure("model_error", `${model} returned an empty caption.`);
			return { model, caption, inferenceMs };
		}
		throw unavailable.failure();
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
