/** Model-layer helpers: a clean emulator and health registry per test, and a warmed-up model. */
import { env } from "cloudflare:workers";
import { emulator } from "../../shared/models/emulator";
import { HEALTH_REGISTRY_NAME } from "../../shared/models/model-list";
import { fixture, uniqueKey, upload } from "./fixtures";
import { onlyJob, runConsumer } from "./queue";

export const UFORM = "@cf/unum/uform-gen2-qwen-500m";
export const LLAVA = "@cf/llava-hf/llava-1.5-7b-hf";
export const MOONDREAM = "@cf/moondream/moondream3.1-9B-A2B";
export const SCOUT = "@cf/meta/llama-4-scout-17b-16e-instruct";
export const GEMMA = "@cf/google/gemma-4-26b-a4b-it";
export const MISTRAL = "@cf/mistralai/mistral-small-3.1-24b-instruct";
export const LLAMA32 = "@cf/meta/llama-3.2-11b-vision-instruct";

export const healthRegistry = () => env.MODEL_HEALTH.getByName(HEALTH_REGISTRY_NAME);

/** Forgets every injected fault and override, the emulator's call log and every model's health. */
export async function resetModels(): Promise<void> {
	emulator.reset();
	await healthRegistry().reset();
}

/**
 * Captions one image with `chain` (the configured chain by default), so that its first model has
 * answered once and is `ok` in the registry; then clears the emulator's log and overrides.
 */
export async function warmUp(chain?: string): Promise<void> {
	const key = uniqueKey("warm-up.jpg");
	await runConsumer([await upload(key, await fixture("small.jpg"))], chain ? { env: { MODEL_CHAIN: chain } } : {});
	const job = await onlyJob(key);
	if (job.status !== "succeeded") throw new Error(`warm-up failed: ${job.error_code} ${job.error_message}`);
	emulator.reset();
}
