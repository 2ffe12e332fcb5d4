/**
 * The model emulator's settings, read from a Worker's environment and validated with zod like the
 * Workers' own settings. By default the emulator plays Workers AI as it is today (late 2026):
 * uform-gen2 and gemma-3-12b are retired and answer `5028: This model was deprecated`, and every task
 * type has its per-minute rate limit.
 */
import { z } from "zod";
import { PLATFORM_RATE_LIMITS, type RateLimits, RateLimitsSetting } from "./rate-limits";

export interface EmulatorSettings {
	/** Added to every call, in milliseconds. */
	latencyMs: number;
	/** Models that answer `5007: No such model`. */
	goneModels: ReadonlySet<string>;
	/** Retired models: they answer `retiredError`. */
	retiredModels: ReadonlySet<string>;
	/** What a retired model answers, `5028: This model was deprecated` by default. */
	retiredError: string;
	/** Requests per minute by task type or model id (3021 beyond them); empty for none. */
	rateLimits: RateLimits;
	/** Divides the rate-limit window (a minute) so benchmarks can run faster than real time. */
	timeScale: number;
	/** Share of calls (0 to 1) that fail at random with a transient `3040: Capacity temporarily exceeded` (the soak). */
	faultRate: number;
}

/** The models Workers AI has retired, as of late 2026. */
export const RETIRED_MODELS = ["@cf/unum/uform-gen2-qwen-500m", "@cf/google/gemma-3-12b-it"];
/**
 * What Workers AI answers for a retired model, as reported in
 * github.com/cloudflare/cloudflare-docs/issues/32501 (the published error table does not list it).
 */
export const RETIRED_ERROR = "5028: This model was deprecated";

const modelList = z.string().transform((s) => new Set(s.split(",").flatMap((x) => (x.trim() ? [x.trim()] : []))));

const EmulatorEnv = z.object({
	EMULATOR_LATENCY_MS: z.coerce.number().int().min(0).default(0),
	EMULATOR_GONE_MODELS: modelList.default(new Set<string>()),
	/** Comma-separated; empty brings every model back to life. */
	EMULATOR_RETIRED_MODELS: modelList.default(new Set(RETIRED_MODELS)),
	EMULATOR_RETIRED_ERROR: z
		.string()
		.regex(/^\d{4}: \S/, "must look like a Workers AI error: '<4-digit code>: <message>'")
		.default(RETIRED_ERROR),
	EMULATOR_RATE_LIMITS: RateLimitsSetting.default(RateLimitsSetting.parse(PLATFORM_RATE_LIMITS)),
	EMULATOR_TIME_SCALE: z.coerce.number().positive().default(1),
	EMULATOR_FAULT_RATE: z.coerce.number().min(0).max(1).default(0),
});

export type EmulatorEnv = z.input<typeof EmulatorEnv>;

export function readEmulatorSettings(env: EmulatorEnv): EmulatorSettings {
	const s = EmulatorEnv.parse(env);
	return {
		latencyMs: s.EMULATOR_LATENCY_MS,
		goneModels: s.EMULATOR_GONE_MODELS,
		retiredModels: s.EMULATOR_RETIRED_MODELS,
		retiredError: s.EMULATOR_RETIRED_ERROR,
		rateLimits: s.EMULATOR_RATE_LIMITS,
		timeScale: s.EMULATOR_TIME_SCALE,
		faultRate: s.EMULATOR_FAULT_RATE,
	};
}

/** The platform as it is today: what the emulator does when nothing is configured. */
export const DEFAULT_EMULATOR_SETTINGS: EmulatorSettings = readEmulatorSettings({});
