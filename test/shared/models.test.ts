import { describe, expect, it } from "vitest";
import { validateImage } from "../../shared/image/sniff";
import { llama32Vision, llava15, uformGen2 } from "../../shared/models/byte-array-model";
import { base64Of, gemma4, llama4Scout, mistralSmall31, toDataUrl } from "../../shared/models/chat-model";
import { ModelEmulator } from "../../shared/models/emulator";
import { RETIRED_ERROR, readEmulatorSettings } from "../../shared/models/emulator-settings";
import { classifyModelError } from "../../shared/models/errors";
import { PUBLISHED_MODELS } from "../../shared/models/input-schemas";
import { captionLength, moondream31 } from "../../shared/models/moondream";
import { RateLimitsSetting, rateLimitFor } from "../../shared/models/rate-limits";
import { ADAPTERS, DEFAULT_MODEL_CHAIN, parseModelChain } from "../../shared/models/registry";
import type { ModelRequest } from "../../shared/models/types";
import { readUsage } from "../../shared/models/usage";
import { instructionFor } from "../../shared/outputs/instructions";
import { backoffSeconds } from "../../shared/queue/backoff";
import { fixture } from "../support/fixtures";

async function image() {
	const bytes = await fixture("small.png");
	return { bytes, info: validateImage(bytes) };
}

describe("base64Of", () => {
	// Every byte value, and lengths that end with none, one and two padding characters.
	const everyByte = Uint8Array.from({ length: 256 * 3 + 2 }, (_, i) => (i * 7) % 256);
	/** The same bytes, without the runtime's encoder: the fallback path. */
	const withoutNative = (bytes: Uint8Array) => Object.assign(bytes.slice(), { toBase64: undefined });

	it("encodes known values, with the runtime's encoder and without it", () => {
		const hello = new TextEncoder().encode("hello");
		expect(base64Of(hello)).toBe("aGVsbG8=");
		expect(base64Of(withoutNative(hello))).toBe("aGVsbG8=");
		expect(base64Of(new Uint8Array([251, 255]))).toBe("+/8=");
		expect(base64Of(withoutNative(new Uint8Array([251, 255])))).toBe("+/8=");
	});

	it("gives the same text on both paths for every byte value and padding, and for a view into a larger buffer", () => {
		for (const length of [0, 1, 2, 3, everyByte.length, everyByte.length - 1]) {
			const bytes = everyByte.subarray(0, length);
			expect(base64Of(bytes)).toBe(base64Of(withoutNative(bytes)));
		}
		const view = everyByte.subarray(5, 50);
		expect(base64Of(view)).toBe(base64Of(withoutNative(view)));
	});

	it("round-trips an image through its data URL", async () => {
		const img = await image();
		const url = toDataUrl(img);
		expect(url.startsWith("data:image/png;base64,")).toBe(true);
		const decoded = Uint8Array.from(atob(url.slice(url.indexOf(",") + 1)), (c) => c.charCodeAt(0));
		expect(decoded).toEqual(img.bytes);
	});
});

const ask = (prompt: string, maxTokens = 128, question = true): ModelRequest => ({
	prompt,
	maxTokens,
	question,
	keyId: null,
});

/** An emulator with every model alive and no rate limit: these tests are about schemas. */
const alive = () => {
	const emulator = new ModelEmulator();
	emulator.overrides = { retiredModels: new Set(), rateLimits: new Map() };
	return emulator;
};

describe("model adapters", () => {
	it.each([uformGen2, llava15, llama4Scout, gemma4, mistralSmall31, llama32Vision])(
		"$id builds an input its published schema accepts",
		async (adapter) => {
			const output = await alive().run(adapter.id, adapter.buildInput(await image(), ask("Describe it")));
			expect(adapter.readCaption(output)).toBe(
				`Emulated caption (${adapter.id}): a PNG image, 64×48 pixels. Prompt: "Describe it".`,
			);
		},
	);

	it("each adapter's task type is the one Workers AI publishes for its model", () => {
		for (const adapter of ADAPTERS.values()) expect(adapter.task).toBe(PUBLISHED_MODELS.get(adapter.id)?.task);
		expect(moondream31.task).toBe("Image-to-Text");
		expect(mistralSmall31.task).toBe("Text Generation");
		expect(llama32Vision.task).toBe("Text Generation");
	});

	it("byte-array models get the image as numbers 0-255; chat models as a data: URL", async () => {
		const img = await image();
		expect(uformGen2.buildInput(img, ask("p", 8))).toEqual({
			image: Array.from(img.bytes),
			prompt: "p",
			max_tokens: 8,
		});
		expect(llama32Vision.buildInput(img, ask("p", 8))).toEqual({
			image: Array.from(img.bytes),
			prompt: "p",
			max_tokens: 8,
		});
		for (const adapter of [llama4Scout, mistralSmall31]) {
			const chat = adapter.buildInput(img, ask("p", 8)) as {
				messages: { content: { type: string; image_url?: { url: string } }[] }[];
			};
			const url = chat.messages[0]?.content.find((c) => c.type === "image_url")?.image_url?.url ?? "";
			expect(url.startsWith("data:image/png;base64,")).toBe(true);
			expect(Uint8Array.from(atob(url.split(",")[1] ?? ""), (c) => c.charCodeAt(0))).toEqual(img.bytes);
		}
		expect(gemma4.buildInput(img, ask("p", 8))).toMatchObject({ chat_template_kwargs: { enable_thinking: false } });
	});

	it("an unexpected output shape is refused", () => {
		expect(() => uformGen2.readCaption({ response: "x" })).toThrow();
		expect(() => gemma4.readCaption({ description: "x" })).toThrow();
		expect(() => llama32Vision.readCaption({ description: "x" })).toThrow();
		expect(() => moondream31.readCaption({ response: "x" })).toThrow();
		expect(gemma4.readCaption({ choices: [{ message: { content: "a cat" } }] })).toBe("a cat");
		expect(moondream31.readCaption({ caption: null, answer: "red", finish_reason: "stop" })).toBe("red");
	});

	it("scout's answer to a response_format request is a JSON value (JSON Mode); the caption is its JSON text", async () => {
		const schema = { type: "object", required: ["width"], properties: { width: { type: "integer" } } };
		const request = { ...ask(instructionFor({ json_schema: schema }, null, "", false).prompt), jsonSchema: schema };
		const input = llama4Scout.buildInput(await image(), request);
		expect(input).toMatchObject({ response_format: { type: "json_schema", json_schema: schema } });
		const output = await alive().run(llama4Scout.id, input);
		expect(output).toMatchObject({ response: { width: 64 } });
		expect(JSON.parse(llama4Scout.readCaption(output, request))).toEqual({ width: 64 });
		expect(llama4Scout.readCaption({ response: [1, 2] }, request)).toBe("[1,2]");
		// A text request gets no JSON value: one there is the wrong shape.
		expect(() => llama4Scout.readCaption(output)).toThrow();
		expect(() => llama4Scout.readCaption({ response: null }, request)).toThrow();
		// Mistral takes the schema as guided_json: its answer stays text.
		const mistral = await alive().run(mistralSmall31.id, mistralSmall31.buildInput(await image(), request));
		expect(mistral).toMatchObject({ response: expect.any(String) });
		expect(JSON.parse(mistralSmall31.readCaption(mistral, request))).toEqual({ width: 64 });
	});

	it("MODEL_CHAIN is parsed in order; an unknown model is a configuration error", () => {
		expect(parseModelChain(" @cf/llava-hf/llava-1.5-7b-hf , @cf/unum/uform-gen2-qwen-500m").map((a) => a.id)).toEqual([
			llava15.id,
			uformGen2.id,
		]);
		expect(parseModelChain("").map((a) => a.id)).toEqual(DEFAULT_MODEL_CHAIN);
		expect(() => parseModelChain("@cf/nope/model")).toThrow(/unknown model/);
	});

	it("the default chain starts with a live captioning model and leaves the retired ones out", () => {
		expect(DEFAULT_MODEL_CHAIN[0]).toBe(moondream31.id);
		expect(PUBLISHED_MODELS.get(DEFAULT_MODEL_CHAIN[0] ?? "")?.task).toBe("Image-to-Text");
		for (const retired of readEmulatorSettings({}).retiredModels) expect(DEFAULT_MODEL_CHAIN).not.toContain(retired);
	});
});

describe("usage: tokens where the published output schema has them, as the emulator answers", () => {
	const prompt = "Describe the image"; // 18 bytes: 5 tokens at one per four bytes
	it.each([
		[moondream31, "metrics"],
		[llama4Scout, "usage"],
		[mistralSmall31, "usage"],
		[gemma4, "usage"],
		[llava15, null],
		[llama32Vision, null],
	] as const)("%s reports them in %s", async (adapter, where) => {
		const output = await alive().run(adapter.id, adapter.buildInput(await image(), ask(prompt)));
		const answer = adapter.readCaption(output);
		const outputTokens = Math.ceil(new TextEncoder().encode(answer).length / 4);
		// moondream counts an image as 729 tokens, the chat models as 576; the prompt adds its own.
		const inputTokens = (adapter === moondream31 ? 729 : 576) + 5;
		if (where === "metrics")
			expect(output).toMatchObject({ metrics: { input_tokens: inputTokens, output_tokens: outputTokens } });
		if (where === "usage") {
			expect(output).toMatchObject({
				usage: {
					prompt_tokens: inputTokens,
					completion_tokens: outputTokens,
					total_tokens: inputTokens + outputTokens,
				},
			});
		}
		if (where === null)
			expect(Object.keys(output as object)).toEqual([adapter === llava15 ? "description" : "response"]);
		expect(readUsage(output)).toEqual(where === null ? null : { inputTokens, outputTokens });
	});
});

describe("moondream3.1: caption or question, validated against its published schema", () => {
	it("the default prompt runs the caption skill with a caption length, streaming off", async () => {
		const input = moondream31.buildInput(await image(), ask("Generate a caption for this image", 512, false));
		expect(input).toMatchObject({ task: "caption", caption_length: "normal", max_tokens: 512, stream: false });
		expect(input).not.toHaveProperty("question");
		expect(String(input.image).startsWith("data:image/png;base64,")).toBe(true);
		const output = await alive().run(moondream31.id, input);
		expect(output).toMatchObject({ finish_reason: "stop", metrics: { output_tokens: expect.any(Number) } });
		expect(moondream31.readCaption(output)).toBe(`Emulated caption (${moondream31.id}): a PNG image, 64×48 pixels.`);
	});

	it("a job's own prompt runs the query skill with the prompt as its question; the answer is the caption", async () => {
		const input = moondream31.buildInput(await image(), ask("What colour is it?", 64));
		expect(input).toMatchObject({ task: "query", question: "What colour is it?", stream: false, reasoning: false });
		const output = await alive().run(moondream31.id, input);
		expect(output).toHaveProperty("answer");
		expect(moondream31.readCaption(output)).toContain('Prompt: "What colour is it?"');
	});

	it("the caption length follows the token budget", () => {
		expect([captionLength(32), captionLength(128), captionLength(512), captionLength(1024)]).toEqual([
			"short",
			"normal",
			"normal",
			"long",
		]);
	});

	const img = "data:image/png;base64,iVBORw0KGgo=";
	it.each<[string, Record<string, unknown>]>([
		["a caption without an image", { task: "caption", stream: false }],
		["an unknown task", { task: "describe", image: img }],
		["an unknown caption length", { task: "caption", image: img, caption_length: "medium" }],
		["an http image URL", { task: "caption", image: "http://example.com/a.jpg" }],
		["a byte array image", { task: "caption", image: [1, 2, 3] }],
		["max_tokens above 2048", { task: "query", question: "q", max_tokens: 4096 }],
		["a prompt field (it has none)", { task: "query", prompt: "q", image: img }],
	])("refuses %s with 5006", async (_name, input) => {
		await expect(alive().run(moondream31.id, input)).rejects.toThrow(/^5006: /);
	});

	it("without stream: false the answer is a stream, which no adapter can read", async () => {
		const output = await alive().run(moondream31.id, { task: "caption", image: img });
		expect(output).toBeInstanceOf(ReadableStream);
		expect(() => moondream31.readCaption(output)).toThrow();
	});
});

describe("the emulator enforces the published input schemas", () => {
	const emulator = alive();
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
		[
			"an http image URL for mistral",
			mistralSmall31.id,
			{ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x/y.jpg" } }] }] },
		],
		["an empty prompt for llama-3.2-vision", llama32Vision.id, { prompt: "", image: [1] }],
		[
			"an image inside the messages of llama-3.2-vision (it takes bytes beside them)",
			llama32Vision.id,
			{
				messages: [
					{ role: "user", content: [{ type: "image_url", image_url: { url: "data:image/png;base64,AA==" } }] },
				],
			},
		],
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
});

describe("the emulator plays Workers AI as it is today", () => {
	it("by default uform-gen2 and gemma-3-12b are retired and answer 5028: This model was deprecated, classified gone", async () => {
		const emulator = new ModelEmulator();
		const img = await image();
		await expect(emulator.run(uformGen2.id, uformGen2.buildInput(img, ask("p")))).rejects.toThrow(RETIRED_ERROR);
		await expect(emulator.run("@cf/google/gemma-3-12b-it", llama4Scout.buildInput(img, ask("p")))).rejects.toThrow(
			/^5028: This model was deprecated/,
		);
		expect(classifyModelError(new Error(RETIRED_ERROR)).kind).toBe("gone");
		await expect(emulator.run(llava15.id, llava15.buildInput(img, ask("p")))).resolves.toBeDefined();
	});

	it("a configured empty list brings the retired models back to life", async () => {
		const emulator = new ModelEmulator(readEmulatorSettings({ EMULATOR_RETIRED_MODELS: "" }));
		await expect(emulator.run(uformGen2.id, uformGen2.buildInput(await image(), ask("p")))).resolves.toEqual({
			description: expect.stringContaining("Emulated caption"),
		});
	});

	it("limits each task type on its own, 720 and 300 a minute by default (3021 beyond), in scaled time", async () => {
		const settings = readEmulatorSettings({});
		expect([...settings.rateLimits]).toEqual([
			["Image-to-Text", 720],
			["Text Generation", 300],
		]);
		const emulator = new ModelEmulator({
			...settings,
			retiredModels: new Set(),
			rateLimits: RateLimitsSetting.parse("Image-to-Text=3, Text Generation=2"),
			timeScale: 600,
		});
		const img = await image();
		const run = (adapter: typeof llava15) => emulator.run(adapter.id, adapter.buildInput(img, ask("p")));
		for (let i = 0; i < 2; i++) await run(mistralSmall31);
		await expect(run(llama4Scout)).rejects.toThrow(/^3021: /);
		// The chat models' window is full; the Image-to-Text one is not.
		for (let i = 0; i < 3; i++) await run(llava15);
		await expect(run(uformGen2)).rejects.toThrow(/^3021: /);
		// A minute at 600× is 100 ms.
		await new Promise((resolve) => setTimeout(resolve, 120));
		await expect(run(mistralSmall31)).resolves.toBeDefined();
	});

	it("EMULATOR_FAULT_RATE fails that share of calls with the transient 3040, and 0 none", async () => {
		const img = await image();
		const run = (e: ModelEmulator) =>
			e.run(llava15.id, llava15.buildInput(img, ask("p"))).then(
				() => "ok",
				(err: Error) => err.message,
			);
		const always = new ModelEmulator(readEmulatorSettings({ EMULATOR_FAULT_RATE: "1", EMULATOR_RATE_LIMITS: "off" }));
		const never = new ModelEmulator(readEmulatorSettings({ EMULATOR_FAULT_RATE: "0", EMULATOR_RATE_LIMITS: "off" }));
		const half = new ModelEmulator(readEmulatorSettings({ EMULATOR_FAULT_RATE: "0.5", EMULATOR_RATE_LIMITS: "off" }));
		for (let i = 0; i < 5; i++) {
			expect(await run(always)).toMatch(/^3040: /);
			expect(await run(never)).toBe("ok");
		}
		expect(classifyModelError(new Error(await run(always)))).toMatchObject({ kind: "transient" });
		const outcomes = await Promise.all(Array.from({ length: 400 }, () => run(half)));
		const failed = outcomes.filter((o) => o !== "ok").length;
		// 400 draws at p = 0.5: outside 140..260 has a probability below 1e-9.
		expect(failed).toBeGreaterThan(140);
		expect(failed).toBeLessThan(260);
		expect(() => readEmulatorSettings({ EMULATOR_FAULT_RATE: "1.5" })).toThrow(/EMULATOR_FAULT_RATE/);
	});

	it("its settings are validated: a bad value names the setting", () => {
		expect(() => readEmulatorSettings({ EMULATOR_RETIRED_ERROR: "deprecated" })).toThrow(/EMULATOR_RETIRED_ERROR/);
		expect(() => readEmulatorSettings({ EMULATOR_RATE_LIMITS: "Image-to-Text=fast" })).toThrow(/EMULATOR_RATE_LIMITS/);
		expect(() => readEmulatorSettings({ EMULATOR_TIME_SCALE: "0" })).toThrow(/EMULATOR_TIME_SCALE/);
		expect(readEmulatorSettings({ EMULATOR_LATENCY_MS: "250", EMULATOR_GONE_MODELS: " a , b " })).toMatchObject({
			latencyMs: 250,
			goneModels: new Set(["a", "b"]),
		});
	});

	it("a model with a limit of its own is counted apart from its task type", () => {
		const limits = RateLimitsSetting.parse("Text Generation=300, @cf/meta/llama-3.2-11b-vision-instruct=50");
		expect(rateLimitFor(llama32Vision, limits)).toEqual({ name: llama32Vision.id, perMinute: 50 });
		expect(rateLimitFor(mistralSmall31, limits)).toEqual({ name: "Text Generation", perMinute: 300 });
		expect(rateLimitFor(moondream31, limits)).toBeNull();
		expect(RateLimitsSetting.parse("off").size).toBe(0);
	});
});

describe("error classification and backoff", () => {
	it.each([
		["5007: No such model", "gone"],
		["AiError: 3042: Invalid model ID", "gone"],
		["5016: User has not agreed to Llama3.2 model terms", "gone"],
		["5035: This model requires a Workers Paid plan", "gone"],
		["3006: Request is too large", "too_large"],
		["3040: Capacity temporarily exceeded", "transient"],
		["3021: Rate limited", "transient"],
		["3007: Request timeout", "transient"],
		["Network connection lost.", "transient"],
		["5004: Invalid data", "input"],
		["5006: Error: required properties at '/' are 'image'", "input"],
		["5028: This model was deprecated", "gone"],
		["5031: model has been deprecated", "gone"],
		["9999: something nobody documented", "failure"],
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
