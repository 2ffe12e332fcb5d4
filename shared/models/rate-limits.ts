/**
 * Workers AI rate limits (developers.cloudflare.com/workers-ai/platform/limits): requests per
 * minute per account, by task type (Image-to-Text 720, Text Generation 300), with some models
 * limited on their own. The consumer paces each limit separately and the emulator enforces the
 * same ones; both read them from a setting like `Image-to-Text=720, Text Generation=300`, where a
 * model id as the name gives that model a limit of its own. `off` means no limit.
 */
import { z } from "zod";
import type { ModelTask } from "./input-schemas";

/**
 * Calls per minute that keep every minute (rate + burst calls at most, GCRA: shared/gcra.ts) under
 * `limit`, with a 2 % margin for timer and network jitter.
 */
export function pacingRate(limit: number, burst: number): number {
	return Math.max(1, limit - burst - Math.ceil(limit * 0.02));
}

/** Name (a task type or a model id) → requests per minute. */
export type RateLimits = ReadonlyMap<string, number>;

export const PLATFORM_RATE_LIMITS = "Image-to-Text=720, Text Generation=300";

/** Parses the setting; a malformed entry is a configuration error, named in the message. */
export const RateLimitsSetting = z.string().transform((setting, ctx): RateLimits => {
	const limits = new Map<string, number>();
	if (setting.trim() === "off") return limits;
	for (const entry of setting.split(",")) {
		if (!entry.trim()) continue;
		const match = /^\s*([^=]+?)\s*=\s*(\d+)\s*$/.exec(entry);
		const perMinute = Number(match?.[2]);
		if (!match?.[1] || !(perMinute > 0)) {
			ctx.addIssue({
				code: "custom",
				message: `"${entry.trim()}" is not <task type or model id>=<requests per minute>`,
			});
			return z.NEVER;
		}
		limits.set(match[1], perMinute);
	}
	return limits;
});

export interface RateLimitedModel {
	id: string;
	task: ModelTask;
}

/** The limit a model's calls count against: its own if it has one, else its task type's; null if none. */
export function rateLimitFor(model: RateLimitedModel, limits: RateLimits): { name: string; perMinute: number } | null {
	for (const name of [model.id, model.task]) {
		const perMinute = limits.get(name);
		if (perMinute !== undefined) return { name, perMinute };
	}
	return null;
}
