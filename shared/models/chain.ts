/**
 * The fallback chain: tries the configured models in order. Before each call it asks the shared
 * model-health registry whether the model may be called (a gone model or an open circuit is
 * skipped by every batch) and waits for a slot of the model's rate limit; after it, it tells the
 * registry what the call showed. What follows each model's turn (the caption, the next model, or
 * the end of the chain) is decided by ./chain-policy.ts; the chain answers a `ChainOutcome`.
 *
 * One chain serves a queue batch, so it talks to the registry for the batch, not per image: one
 * question per model for all its messages (a probe goes to one of them, the others wait for its
 * outcome here), failures and probes recorded at once, successes held and sent together.
 */
import { errorMessage, log } from "../log";
import { type ChainOutcome, nextTurn, type PassedOver, type TurnOutcome, whenExhausted } from "./chain-policy";
import { type ClassifiedError, classifyModelError } from "./errors";
import { type CallOutcome, PROBE_LEASE_MS, PROBE_WAIT_MS } from "./health";
import type { Admission, AfterCall, CallRecord, ModelCallRecord } from "./health-registry";
import {
	type AiRunner,
	type ImageLimits,
	ImageUnfit,
	type ModelAdapter,
	type ModelImage,
	type ModelRequest,
	writes,
} from "./types";
import { addUsage, readUsage, type Usage, withUsage } from "./usage";

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
	/**
	 * Several calls in one round trip, in order (the registry's `recordMany`). A gate that has it
	 * lets the chain hold its successful calls' records and send them together (`flushRecords`).
	 */
	recordMany?(calls: ModelCallRecord[]): Promise<AfterCall[]>;
}

/** Whether a model call may go now (after any wait the pacer did), or only later. */
export type Pace = { kind: "go" } | { kind: "later"; message: string; retryAfterSeconds: number };

/** Awaited before every model call (rate pacing). */
export type Pacer = (adapter: ModelAdapter) => Promise<Pace>;

/**
 * How one caption goes through the chain (the consumer's lane scheduler decides it): the models in
 * the order to try them, and the pacer that gets their slots.
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

/** A probe lease this batch holds: the batch's other messages wait for its outcome here, not in the registry. */
interface ProbeLease {
	expires: number;
	settled: Promise<void>;
	settle: () => void;
}

function probeLease(now: number): ProbeLease {
	let settle = () => {};
	const settled = new Promise<void>((resolve) => {
		settle = resolve;
	});
	return { expires: now + PROBE_LEASE_MS, settled, settle };
}

export class ModelChain {
	/** The registry's answers this batch holds on to, by model. */
	private readonly admissions = new Map<string, { admission: Admission; until: number }>();
	/** Questions to the registry in flight, shared by the messages that need the same answer. */
	private readonly asking = new Map<string, Promise<Admission>>();
	/** The probes this batch was handed, by model, until they are recorded or handed back. */
	private readonly probing = new Map<string, ProbeLease>();
	/** Successful calls not yet told to the registry (sent together: `flushRecords`). */
	private held: ModelCallRecord[] = [];
	private flushTimer: ReturnType<typeof setTimeout> | null = null;
	private flushing: Promise<void> = Promise.resolve();

	/**
	 * `recordHoldMs`: how long a successful call's record waits for the batch's other calls' before
	 * they are sent together (when the gate can send several at once).
	 */
	constructor(
		private readonly ai: AiRunner,
		private readonly health: ModelHealthGate,
		private readonly recordHoldMs = 1000,
	) {}

	/**
	 * Sends the successful calls' records still held (the queue handler awaits it before the batch
	 * ends). A record lost with the invocation only costs the model's figures those calls and leaves
	 * a failure streak unbroken by those successes (the circuit can open sooner, never later).
	 */
	async flushRecords(): Promise<void> {
		if (this.flushTimer !== null) clearTimeout(this.flushTimer);
		this.flushTimer = null;
		const calls = this.held;
		this.held = [];
		const send = this.health.recordMany;
		if (calls.length > 0 && send) {
			const sent = send.call(this.health, calls).then(
				() => undefined,
				(err: unknown) => log("warn", "model_records_lost", { calls: calls.length, error: errorMessage(err) }),
			);
			this.flushing = Promise.all([this.flushing, sent]).then(() => undefined);
		}
		await this.flushing;
	}

	/**
	 * Captions an image. `prepare` brings the image within a model's limits; it is called once per
	 * distinct set of limits.
	 */
	async caption(prepare: Prepare, request: ModelRequest, route: Route): Promise<Captioning> {
		const images = new PreparedImages(prepare);
		const passedOver: PassedOver[] = [];
		const { pace } = route;
		let inferenceMs = 0;
		let usage: Usage | null = null;
		// A model that cannot write the job's language is not asked at all (docs/models.md).
		const able = route.adapters.filter((a) => writes(a, request.language ?? null));
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
		if (ready.kind === "unfit") {
			// As if the model had answered 3006, with no call made and nothing for its health.
			const error = { kind: "too_large" as const, code: null, message: ready.message };
			return { outcome: { kind: "error", model, error, callable: true, retryAt: 0 }, latencyMs: 0, usage: null };
		}
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
		// An answer costs its tokens whether or not its caption is usable, or the registry hears of it.
		const usage = readUsage(output);
		const answered: CallRecord = { outcome: { kind: "answered" }, ok: true, latencyMs, probe: admission.probe };
		// A probe's answer is news for every caller at once; another success only waits for its batch's.
		try {
			if (admission.probe || !this.health.recordMany) await this.record(model, answered);
			else this.hold(model, answered);
		} catch (err) {
			throw withUsage(err, usage);
		}
		try {
			return { outcome: { kind: "answered", model, caption: adapter.readCaption(output, request) }, latencyMs, usage };
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
	): Promise<
		| { kind: "go"; input: Record<string, unknown> }
		| Extract<Pace, { kind: "later" }>
		| { kind: "unfit"; message: string }
	> {
		try {
			const input = adapter.buildInput(await images.for(adapter.limits), request);
			// The wait for a slot is not inference time: inference_ms stays the model's own latency.
			const pace = await pacer(adapter);
			if (pace.kind === "later") {
				if (probe) await this.abandon(adapter.id);
				return pace;
			}
			return { kind: "go", input };
		} catch (err) {
			// No call will be made: let another caller probe the model.
			if (probe) await this.abandon(adapter.id);
			if (err instanceof ImageUnfit) return { kind: "unfit", message: err.message };
			throw err;
		}
	}

	/** Hands a probe back to the registry; the batch's messages waiting on it ask again. */
	private async abandon(model: string): Promise<void> {
		try {
			await this.health.abandon(model);
		} finally {
			this.endProbe(model);
		}
	}

	private endProbe(model: string): void {
		this.probing.get(model)?.settle();
		this.probing.delete(model);
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

	/**
	 * The registry's answer for `model`, from this batch's memory when it still holds. The batch
	 * asks once for all its messages; a probe it is handed goes to one message, and the batch's
	 * others wait here for its outcome (as the registry makes other batches wait), at most
	 * PROBE_WAIT_MS, after which they move on as the registry would have told them to.
	 */
	private async admit(model: string): Promise<Admission> {
		for (let waited = false; ; ) {
			const held = this.admissions.get(model);
			if (held && held.until > Date.now()) return held.admission;
			const probe = this.probing.get(model);
			if (probe) {
				if (waited) return { call: false, gone: false, retryAt: probe.expires };
				await settledWithin(probe.settled, Math.min(PROBE_WAIT_MS, probe.expires - Date.now()));
				waited = true;
				continue;
			}
			const asked = this.asking.get(model);
			if (asked) {
				// Its answer is now held, or is a probe for the message that asked.
				await asked;
				continue;
			}
			return this.ask(model);
		}
	}

	private async ask(model: string): Promise<Admission> {
		const asking = this.health.admit(model);
		this.asking.set(model, asking);
		try {
			const admission = await asking;
			if (!admission.call) this.admissions.set(model, { admission, until: admission.retryAt });
			else if (!admission.probe) this.admissions.set(model, { admission, until: Date.now() + CALL_ADMISSION_MS });
			else this.probing.set(model, probeLease(Date.now()));
			return admission;
		} finally {
			if (this.asking.get(model) === asking) this.asking.delete(model);
		}
	}

	/** Holds a successful call's record for the batch's next round trip to the registry. */
	private hold(model: string, call: CallRecord): void {
		this.held.push({ model, call });
		if (this.flushTimer === null) {
			this.flushTimer = setTimeout(() => void this.flushRecords(), this.recordHoldMs);
		}
	}

	/**
	 * Tells the registry what a call showed (with the batch's held records before it, in the order
	 * the calls ended), and remembers its answer for the rest of the batch.
	 */
	private async record(model: string, call: CallRecord): Promise<AfterCall> {
		let after: AfterCall;
		try {
			after = await this.send(model, call);
		} finally {
			if (call.probe) this.endProbe(model);
		}
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

	private async send(model: string, call: CallRecord): Promise<AfterCall> {
		const send = this.health.recordMany;
		if (!send || this.held.length === 0) return this.health.record(model, call);
		if (this.flushTimer !== null) clearTimeout(this.flushTimer);
		this.flushTimer = null;
		const calls = [...this.held, { model, call }];
		this.held = [];
		const answers = await send.call(this.health, calls);
		const after = answers[answers.length - 1];
		if (!after) throw new Error("the health registry answered no record");
		return after;
	}
}

/** Resolves when `settled` does or after `ms`, whichever comes first. */
async function settledWithin(settled: Promise<void>, ms: number): Promise<void> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	const timeout = new Promise<void>((resolve) => {
		timer = setTimeout(resolve, Math.max(0, ms));
	});
	await Promise.race([settled, timeout]);
	if (timer !== null) clearTimeout(timer);
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
