/**
 * What a model reports about the size of its work: input and output tokens, read from its answer
 * where its published output schema has them (docs/models.md#usage-what-a-model-reports). Workers AI bills by tokens,
 * so these are what a job cost; a model whose schema reports none gives null, never a guess.
 *
 * - OpenAI-style `usage` (`prompt_tokens`, `completion_tokens`): llama-4-scout, mistral-small-3.1,
 *   gemma-4 (optional in their schemas: an answer without it reports nothing);
 * - moondream's `metrics` (`input_tokens`, `output_tokens`, required in its schema);
 * - nothing: llava-1.5, uform-gen2 (`description` only) and llama-3.2-vision (`response` only).
 */
import { z } from "zod";
import { errorMessage } from "../log";

export interface Usage {
	inputTokens: number;
	outputTokens: number;
}

/** How a model's answer reports its tokens, as its published output schema says (the emulator plays it). */
export type UsageReport = "usage" | "metrics" | "none";

const tokens = z.number().nonnegative().transform(Math.round);
const OpenAiUsage = z.object({ usage: z.object({ prompt_tokens: tokens, completion_tokens: tokens }) });
const MoondreamMetrics = z.object({ metrics: z.object({ input_tokens: tokens, output_tokens: tokens }) });

/**
 * The tokens an answer reports in either documented shape, or null when it reports none: whatever
 * the model returns is recorded, so no table of which model reports what can drift from Workers AI.
 */
export function readUsage(output: unknown): Usage | null {
	const usage = OpenAiUsage.safeParse(output);
	if (usage.success) {
		return { inputTokens: usage.data.usage.prompt_tokens, outputTokens: usage.data.usage.completion_tokens };
	}
	const metrics = MoondreamMetrics.safeParse(output);
	if (metrics.success) {
		return { inputTokens: metrics.data.metrics.input_tokens, outputTokens: metrics.data.metrics.output_tokens };
	}
	return null;
}

/** The sum of calls' usage: a call that reported nothing adds nothing; null when none reported. */
export function addUsage(a: Usage | null, b: Usage | null): Usage | null {
	if (a === null) return b;
	if (b === null) return a;
	return { inputTokens: a.inputTokens + b.inputTokens, outputTokens: a.outputTokens + b.outputTokens };
}

/**
 * What a step threw after model calls that answered, with their tokens: an attempt that ends on
 * it still records them (docs/jobs.md#usage). `error` is what was thrown, unchanged.
 */
export class ErrorWithUsage extends Error {
	constructor(
		readonly error: unknown,
		readonly usage: Usage,
	) {
		super(errorMessage(error));
	}
}

/** `error` carrying `usage` too (added to what it carries already); `error` itself when there is none. */
export function withUsage(error: unknown, usage: Usage | null): unknown {
	if (usage === null) return error;
	if (error instanceof ErrorWithUsage) return new ErrorWithUsage(error.error, addUsage(usage, error.usage) ?? usage);
	return new ErrorWithUsage(error, usage);
}

/** What was thrown, and the tokens of the answered calls it carries (null: none). */
export function thrownUsage(thrown: unknown): { error: unknown; usage: Usage | null } {
	if (thrown instanceof ErrorWithUsage) return { error: thrown.error, usage: thrown.usage };
	return { error: thrown, usage: null };
}
