/**
 * Picks what answers model calls: the Workers AI binding (MODEL_BACKEND = "workers-ai") or the
 * emulator (MODEL_BACKEND = "emulator", the default for local development and tests), configured
 * from the same environment (shared/models/emulator-settings.ts).
 */
import { z } from "zod";
import { emulator } from "./emulator";
import { type EmulatorEnv, readEmulatorSettings } from "./emulator-settings";
import type { AiRunner } from "./types";

export interface ModelBackendEnv extends EmulatorEnv {
	MODEL_BACKEND?: string;
	AI?: Ai;
}

const Backend = z.enum(["emulator", "workers-ai"]).default("emulator");

export function modelBackend(env: ModelBackendEnv): AiRunner {
	const backend = Backend.safeParse(env.MODEL_BACKEND);
	if (!backend.success) throw new Error(`MODEL_BACKEND must be "emulator" or "workers-ai", not "${env.MODEL_BACKEND}"`);
	if (backend.data === "workers-ai") {
		const ai = env.AI;
		if (!ai) throw new Error('MODEL_BACKEND is "workers-ai" but the Worker has no AI binding');
		return { run: (model, inputs) => ai.run(model as keyof AiModels, inputs as never) as Promise<unknown> };
	}
	return emulator.configure(readEmulatorSettings(env));
}
