/**
 * The fallback chain's own steps around its decision (shared/models/chain.ts): what it answers when
 * the rate limiter has no slot, and that the probe it was handed goes back to the health registry.
 * A registry of its own per test (a unique Durable Object name); calls go to the model emulator.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ModelChain, type ModelHealthGate } from "../../shared/models/chain";
import { emulator } from "../../shared/models/emulator";
import { ADAPTERS } from "../../shared/models/registry";
import type { AiRunner, ModelImage } from "../../shared/models/types";
import { uniqueKey } from "../support/fixtures";
import { LLAVA } from "../support/models";

const POLICY = { failureThreshold: 3, cooldownMs: 60_000, maxCooldownMs: 600_000 };
const IMAGE: ModelImage = {
	bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
	info: { format: "jpeg", mime: "image/jpeg", width: 1, height: 1 },
};

function chainParts() {
	const registry = env.MODEL_HEALTH.getByName(uniqueKey("chain-registry"));
	const gate: ModelHealthGate = {
		admit: (model) => registry.admit(model),
		record: (model, call) => registry.record(model, call, POLICY),
		abandon: (model) => registry.abandon(model),
	};
	const calls: string[] = [];
	const ai: AiRunner = {
		run: (model, input) => {
			calls.push(model);
			return emulator.run(model, input);
		},
	};
	const adapter = ADAPTERS.get(LLAVA);
	if (!adapter) throw new Error(`no adapter for ${LLAVA}`);
	return { registry, gate, calls, ai, adapter };
}

describe("the model chain", () => {
	it("without a rate-limit slot it calls no model, answers a retry after the limiter's wait, and hands the probe back", async () => {
		const { registry, gate, calls, ai, adapter } = chainParts();
		const later = async () => ({ kind: "later" as const, message: "no slot for 7 s", retryAfterSeconds: 7 });
		const chain = new ModelChain(ai, gate);
		const answer = await chain.caption(
			async () => IMAGE,
			{ prompt: "Describe it", maxTokens: 32, question: false, keyId: null },
			{ adapters: [adapter], pace: later },
		);
		expect(answer).toMatchObject({ kind: "retry", message: "no slot for 7 s", minDelaySeconds: 7 });
		expect(calls).toEqual([]);
		// The model was never called, so its probe is free at once for the next caller.
		expect(await registry.admit(LLAVA)).toEqual({ call: true, probe: true });
	});

	it("with a slot it captions with the model and records the answer, so the model is ok for every caller", async () => {
		const { registry, gate, calls, ai, adapter } = chainParts();
		const chain = new ModelChain(ai, gate);
		const go = async () => ({ kind: "go" as const });
		const answer = await chain.caption(
			async () => IMAGE,
			{ prompt: "Describe it", maxTokens: 32, question: false, keyId: null },
			{ adapters: [adapter], pace: go },
		);
		expect(answer).toMatchObject({ kind: "captioned", model: LLAVA });
		expect(answer.kind === "captioned" && answer.caption.length > 0).toBe(true);
		expect(calls).toEqual([LLAVA]);
		expect(await registry.admit(LLAVA)).toEqual({ call: true, probe: false });
	});
});
