/**
 * Picks what answers model calls: the Workers AI binding (MODEL_BACKEND = "workers-ai") or the
 * emulator (MODEL_BACKEND = "emulator", the default for local development and tests).
 */
import { emulator } from "./emulator";
import type { AiRunner } from "./types";

export interface ModelBackendEnv {
	MODEL_BACKEND?: string;
	AI?: Ai;
	EMULATOR_LATENCY_MS?: string;
	EMULATOR_GONE_MODELS?: string;
	EMULATOR_REQUESTS_PER_MINUTE?: string;
	EMULATOR_TIME_SCALE?: string;
}

const list = (s: string | undefined) =>
	new Set(
		(s ?? "")
			.split(",")
			.map((x) => x.trim())
			.filter(Boolean),
	);

export function modelBackend(env: ModelBackendEnv): AiRunner {
	const backend = env.MODEL_BACKEND ?? "emulator";
	if (backend === "workers-ai") {
		const ai = env.AI;
		if (!ai) throw new Error('MODEL_BACKEND is "workers-ai" but the Worker has no AI binding');
		return { run: (model, inputs) => ai.run(model as keyof AiModels, inputs as never) as Promise<unknown> };
	}
	if (backend !== "emulator") throw new Error(`MODEL_BACKEND must be "emulator" or "workers-ai", not "${backend}"`);
	const rpm = Number(env.EMULATOR_REQUESTS_PER_MINUTE ?? "");
	return emulator.configure({
		latencyMs: Number(env.EMULATOR_LATENCY_MS ?? 0) || 0,
		goneModels: list(env.EMULATOR_GONE_MODELS),
		requestsPerMinute: Number.isFinite(rpm) && rpm > 0 ? rpm : null,
		// The benchmark shortens the rate-limit minute (e.g. 4 → 15 s) to measure pacing in less time.
		timeScale: Number(env.EMULATOR_TIME_SCALE ?? "") > 0 ? Number(env.EMULATOR_TIME_SCALE) : 1,
	});
}
