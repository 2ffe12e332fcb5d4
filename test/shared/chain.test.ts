/**
 * The fallback chain's own steps around its decision (shared/models/chain.ts): what it answers when
 * the rate limiter has no slot, and that the probe it was handed goes back to the health registry.
 * A registry of its own per test (a unique Durable Object name); calls go to the model emulator.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { ModelChain, type ModelHealthGate } from "../../shared/models/chain";
import { emulator } from "../../shared/models/emulator";
import { ADAPTERS } from "../../shared/models/registry";
import type { AiRunner, ModelImage } from "../../shared/models/types";
import { uniqueKey } from "../support/fixtures";
import { LLAVA, MOONDREAM, resetModels } from "../support/models";

const POLICY = { failureThreshold: 3, cooldownMs: 60_000, maxCooldownMs: 600_000 };
const IMAGE: ModelImage = {
	bytes: new Uint8Array([0xff, 0xd8, 0xff, 0xd9]),
	info: { format: "jpeg", mime: "image/jpeg", width: 1, height: 1 },
};

beforeEach(resetModels);

function adapterOf(model: string) {
	const adapter = ADAPTERS.get(model);
	if (!adapter) throw new Error(`no adapter for ${model}`);
	return adapter;
}

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
	return { registry, gate, calls, ai, adapter: adapterOf(LLAVA) };
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

	it("a transient error on an API key's probe, which opens no circuit, retries the message on the same model", async () => {
		const { registry, gate, calls, ai } = chainParts();
		const go = async () => ({ kind: "go" as const });
		const route = { adapters: [adapterOf(MOONDREAM), adapterOf(LLAVA)], pace: go };
		const request = { prompt: "Describe it", maxTokens: 32, question: false, keyId: "key_1" };
		emulator.inject({ model: MOONDREAM, code: 3040, times: 1 });
		const chain = new ModelChain(ai, gate);
		const answer = await chain.caption(async () => IMAGE, request, route);
		// Nothing proved moondream broken (one key's failed probe leaves it half-open): llava is not asked.
		expect(answer).toMatchObject({ kind: "retry", minDelaySeconds: 0 });
		expect(answer.kind === "retry" && answer.message).toContain("3040");
		expect(calls).toEqual([MOONDREAM]);
		// The retry probes moondream again, and its answer closes the circuit.
		const again = await chain.caption(async () => IMAGE, request, route);
		expect(again).toMatchObject({ kind: "captioned", model: MOONDREAM });
		expect(calls).toEqual([MOONDREAM, MOONDREAM]);
		expect(await registry.admit(MOONDREAM)).toEqual({ call: true, probe: false });
	});

	it("the same error on a probe of the admin's request opens the circuit: the chain moves on to the next model", async () => {
		const { registry, gate, calls, ai } = chainParts();
		const go = async () => ({ kind: "go" as const });
		const route = { adapters: [adapterOf(MOONDREAM), adapterOf(LLAVA)], pace: go };
		emulator.inject({ model: MOONDREAM, code: 3040, times: 1 });
		const chain = new ModelChain(ai, gate);
		const answer = await chain.caption(
			async () => IMAGE,
			{ prompt: "Describe it", maxTokens: 32, question: false, keyId: null },
			route,
		);
		expect(answer).toMatchObject({ kind: "captioned", model: LLAVA });
		expect(calls).toEqual([MOONDREAM, LLAVA]);
		expect(await registry.admit(MOONDREAM)).toMatchObject({ call: false, gone: false });
	});
});
