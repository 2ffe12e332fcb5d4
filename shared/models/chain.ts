/**
 * The fallback chain (SPEC §4): tries the configured models in order, moves on when a model is
 * gone, and remembers gone models for the rest of the batch. Transient errors are thrown as
 * `TransientError` (the message is retried); permanent ones fail the job.
 */
import { JobFailure, TransientError } from "../jobs/errors";
import { classifyModelError } from "./errors";
import type { AiRunner, ImageLimits, ModelAdapter, ModelImage } from "./types";

export interface Caption {
	model: string;
	caption: string;
	inferenceMs: number;
}

export class ModelChain {
	private readonly gone = new Set<string>();

	constructor(
		private readonly ai: AiRunner,
		private readonly adapters: readonly ModelAdapter[],
		/** Awaited before every model call (rate pacing); may throw a TransientError to retry later. */
		private readonly pace: () => Promise<void> = async () => {},
	) {}

	/** Models found gone during this batch. */
	get goneModels(): ReadonlySet<string> {
		return this.gone;
	}

	/**
	 * Captions an image. `prepare` brings the image within a model's limits; it is called once per
	 * distinct set of limits.
	 */
	async caption(
		prepare: (limits: ImageLimits) => Promise<ModelImage>,
		prompt: string,
		maxTokens: number,
	): Promise<Caption> {
		const prepared = new Map<string, Promise<ModelImage>>();
		let inferenceMs = 0;
		for (const adapter of this.adapters) {
			if (this.gone.has(adapter.id)) continue;
			const limitsKey = `${adapter.limits.maxBytes}/${adapter.limits.maxSide}`;
			let image = prepared.get(limitsKey);
			if (!image) {
				image = prepare(adapter.limits);
				prepared.set(limitsKey, image);
			}
			const input = adapter.buildInput(await image, prompt, maxTokens);
			// The wait for a slot is not inference time: inference_ms stays the model's own latency.
			await this.pace();
			const started = Date.now();
			let output: unknown;
			try {
				output = await this.ai.run(adapter.id, input);
			} catch (err) {
				inferenceMs += Date.now() - started;
				const error = classifyModelError(err);
				switch (error.kind) {
					case "gone":
						this.gone.add(adapter.id);
						continue;
					case "transient":
						throw new TransientError(`${adapter.id}: ${error.message}`, error.code === 3021 ? 10 : 0);
					case "permanent":
						throw new JobFailure("model_error", `${adapter.id} refused the request: ${error.message}`);
				}
			}
			inferenceMs += Date.now() - started;
			let caption: string;
			try {
				caption = adapter.readCaption(output).trim();
			} catch {
				throw new JobFailure("model_error", `${adapter.id} answered in an unexpected shape.`);
			}
			if (!caption) throw new JobFailure("model_error", `${adapter.id} returned an empty caption.`);
			return { model: adapter.id, caption, inferenceMs };
		}
		throw new JobFailure(
			"model_unavailable",
			`No model in the chain is available: ${this.adapters.map((a) => a.id).join(", ")}.`,
		);
	}
}
