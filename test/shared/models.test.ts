import { describe, expect, it } from "vitest";
import { validateImage } from "../../shared/image/sniff";
import { llava15, uformGen2 } from "../../shared/models/byte-array-model";
import { gemma4, llama4Scout } from "../../shared/models/chat-model";
import { ModelEmulator } from "../../shared/models/emulator";
import { classifyModelError } from "../../shared/models/errors";
import { parseModelChain } from "../../shared/models/registry";
import { backoffSeconds } from "../../shared/queue/backoff";
import { fixture } from "../support/fixtures";

async function image() {
	const bytes = await fixture("small.png");
	return { bytes, info: validateImage(bytes) };
}

describe("model adapters", () => {
	it.each([uformGen2, llava15, llama4Scout, gemma4])(
		"$id builds an input its published schema accepts",
		async (adapter) => {
			const emulator = new ModelEmulator();
			const output = await emulator.run(adapter.id, adapter.buildInput(await image(), "Describe it", 128));
			expect(adapter.readCaption(output)).toBe(
				`Emulated caption (${adapter.id}): a PNG image, 64×48 pixels. Prompt: "Describe it".`,
			);
		},
	);

	it("byte-array models get the image as numbers 0-255; chat models as a data: URL", async () => {
		const img = await image();
		expect(uformGen2.buildInput(img, "p", 8)).toEqual({ image: Array.from(img.bytes), prompt: "p", max_tokens: 8 });
		const chat = llama4Scout.buildInput(img, "p", 8) as {
			messages: { content: { type: string; image_url?: { url: string } }[] }[];
		};
		const url = chat.messages[0]?.content.find((c) => c.type === "image_url")?.image_url?.url ?? "";
		expect(url.startsWith("data:image/png;base64,")).toBe(true);
		expect(Uint8Array.from(atob(url.split(",")[1] ?? ""), (c) => c.charCodeAt(0))).toEqual(img.bytes);
		expect(gemma4.buildInput(img, "p", 8)).toMatchObject({ chat_template_kwargs: { enable_thinking: false } });
	});

	it("an unexpected output shape is refused", () => {
		expect(() => uformGen2.readCaption({ response: "x" })).toThrow();
		expect(() => gemma4.readCaption({ description: "x" })).toThrow();
		expect(gemma4.readCaption({ choices: [{ message: { content: "a cat" } }] })).toBe("a cat");
	});

	it("MODEL_CHAIN is parsed in order; an unknown model is a configuration error", () => {
		expect(parseModelChain(" @cf/llava-hf/llava-1.5-7b-hf , @cf/unum/uform-gen2-qwen-500m").map((a) => a.id)).toEqual([
			llava15.id,
			uformGen2.id,
		]);
		expect(parseModelChain("").map((a) => a.id)[0]).toBe(uformGen2.id);
		expect(() => parseModelChain("@cf/nope/model")).toThrow(/unknown model/);
	});
});

describe("the emulator enforces the published input schemas", () => {
	const emulator = new ModelEmulator();
	const cases: [string, string, Record<string, unknown>][] = [
		["an image_url for uform-gen2", uformGen2.id, { image_url: "https://example.com/a.jpg", prompt: "x" }],
		["no image for llava", llava15.id, { prompt: "x" }],
		["bytes above 255", uformGen2.id, { image: [0, 256] }],
		["a fractional byte", llava15.id, { image: [0, 1.5, 2] }],
		["a byte that is not a number", uformGen2.id, { image: [0, "1"] }],
		["a non-integer max_tokens", uformGen2.id, { image: [1], max_tokens: 1.5 }],
		[
			"an http image URL for a chat model",
			llama4Scout.id,
			{
				messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x/y.jpg" } }] }],
			},
		],
		["no messages for gemma", gemma4.id, { prompt: "x" }],
	];
	it.each(cases)("refuses %s with 5006", async (_name, model, input) => {
		await expect(emulator.run(model, input)).rejects.toThrow(/^5006: /);
	});

	it("names the first bad element of a byte array, as Workers AI does", async () => {
		await expect(emulator.run(uformGen2.id, { image: [1, 2, -3, 400] })).rejects.toThrow("'/image/2'");
	});

	it("an unknown model answers 5007", async () => {
		await expect(emulator.run("@cf/unum/uform-gen3", { image: [1] })).rejects.toThrow(/^5007: /);
	});

	it("enforces a requests-per-minute limit with 3021, in scaled time", async () => {
		const limited = new ModelEmulator();
		limited.overrides = { requestsPerMinute: 3, timeScale: 600 };
		const input = uformGen2.buildInput(await image(), "p", 8);
		for (let i = 0; i < 3; i++) await limited.run(uformGen2.id, input);
		await expect(limited.run(uformGen2.id, input)).rejects.toThrow(/^3021: /);
		// A minute at 600× is 100 ms.
		await new Promise((resolve) => setTimeout(resolve, 120));
		await expect(limited.run(uformGen2.id, input)).resolves.toBeDefined();
	});
});

describe("error classification and backoff", () => {
	it.each([
		["5007: No such model", "gone"],
		["AiError: 3042: Invalid model ID", "gone"],
		["3040: Capacity temporarily exceeded", "transient"],
		["3021: Rate limited", "transient"],
		["3007: Request timeout", "transient"],
		["Network connection lost.", "transient"],
		["5004: Invalid data", "permanent"],
		["5006: Error: required properties at '/' are 'image'", "permanent"],
		["3006: Request is too large", "permanent"],
	])("%s is %s", (message, kind) => {
		expect(classifyModelError(new Error(message)).kind).toBe(kind);
	});

	it("grows exponentially with jitter, within the cap", () => {
		const policy = { baseSeconds: 2, maxSeconds: 60 };
		expect(backoffSeconds(1, policy, () => 0)).toBe(1);
		expect(backoffSeconds(1, policy, () => 1)).toBe(2);
		expect(backoffSeconds(4, policy, () => 1)).toBe(16);
		expect(backoffSeconds(20, policy, () => 1)).toBe(60);
		expect(backoffSeconds(20, policy, () => 0)).toBe(30);
		expect(backoffSeconds(1, policy, () => 0, 10)).toBe(10);
		const spread = new Set(Array.from({ length: 50 }, () => backoffSeconds(5, policy)));
		expect(spread.size).toBeGreaterThan(3);
	});
});
