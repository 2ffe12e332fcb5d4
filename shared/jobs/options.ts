/**
 * Per-object caption options (SPEC §3). They come from the object's R2 custom metadata
 * (`prompt`, `max-tokens`, `callback-url`), so bucket uploads and API uploads behave the same;
 * options given to `POST /v1/jobs` take precedence. Invalid values fail the job, never vanish.
 */
import { z } from "zod";
import { toHex } from "../ids";
import { JobFailure } from "./errors";

export const MAX_PROMPT_LENGTH = 2000;
export const MAX_TOKENS_LIMIT = 2048;

export const Prompt = z.string().trim().min(1).max(MAX_PROMPT_LENGTH);
export const MaxTokens = z.coerce.number().int().min(1).max(MAX_TOKENS_LIMIT);
export const CallbackUrl = z.url({ protocol: /^https?$/ });

/** Custom metadata keys, shared with the upload endpoint's headers. */
export const METADATA_KEYS = { prompt: "prompt", maxTokens: "max-tokens", callbackUrl: "callback-url" } as const;

export interface CaptionOptions {
	prompt: string;
	maxTokens: number;
	callbackUrl: string | null;
}

export interface OptionDefaults {
	prompt: string;
	maxTokens: number;
}

function pick<T>(schema: z.ZodType<T>, value: string | number | null | undefined, name: string): T | undefined {
	if (value === null || value === undefined) return undefined;
	const parsed = schema.safeParse(value);
	if (!parsed.success) {
		throw new JobFailure(
			"invalid_options",
			`Invalid ${name} ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`,
		);
	}
	return parsed.data;
}

/** Resolves a job's options: explicit job options, then custom metadata, then defaults. */
export function resolveOptions(
	job: { prompt: string | null; max_tokens: number | null; callback_url: string | null },
	metadata: Record<string, string>,
	defaults: OptionDefaults,
): CaptionOptions {
	const prompt = pick(Prompt, job.prompt, "prompt") ?? pick(Prompt, metadata[METADATA_KEYS.prompt], "prompt metadata");
	const maxTokens =
		pick(MaxTokens, job.max_tokens, "max_tokens") ??
		pick(MaxTokens, metadata[METADATA_KEYS.maxTokens], "max-tokens metadata");
	const callbackUrl =
		pick(CallbackUrl, job.callback_url, "callback_url") ??
		pick(CallbackUrl, metadata[METADATA_KEYS.callbackUrl], "callback-url metadata");
	return {
		prompt: prompt ?? defaults.prompt,
		maxTokens: maxTokens ?? defaults.maxTokens,
		callbackUrl: callbackUrl ?? null,
	};
}

/**
 * What tells apart two uploads of the same bytes (one etag) with different caption metadata: a
 * SHA-256 of the three option values as stored ('' when the object has none of them). The upload
 * endpoint and the consumer compute it from the same custom metadata, so a notification lands on
 * the job of the upload that made it (migrations/0007_limits.sql).
 */
export async function optionsKey(metadata: Record<string, string>): Promise<string> {
	const values = [METADATA_KEYS.prompt, METADATA_KEYS.maxTokens, METADATA_KEYS.callbackUrl].map(
		(name) => metadata[name] ?? null,
	);
	if (values.every((v) => v === null)) return "";
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(values)));
	return toHex(new Uint8Array(digest));
}
