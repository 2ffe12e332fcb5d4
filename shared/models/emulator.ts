/**
 * Workers AI emulator for local development and tests (docs/models.md). It validates each request
 * against the model's published input schema, answers deterministically with a caption that says
 * it is emulated and describes the image it was given (format, width × height), and plays the
 * platform as it is: retired models, gone models, per-task-type rate limits, latency and any
 * Workers AI error code injected by a test.
 */
import { inspectImage } from "../image/sniff";
import { readInstruction } from "../outputs/instructions";
import { emulatedAnswer } from "./emulated-outputs";
import { DEFAULT_EMULATOR_SETTINGS, type EmulatorSettings } from "./emulator-settings";
import { PUBLISHED_MODELS, type PublishedModel } from "./input-schemas";
import { rateLimitFor } from "./rate-limits";
import type { AiRunner } from "./types";
import type { Usage } from "./usage";

export type { EmulatorSettings } from "./emulator-settings";

export interface InjectedFault {
	/** Only calls to this model fail; every model when absent. */
	model?: string;
	/**
	 * Workers AI error code to throw, "network" for a connection failure, "empty" for a blank answer,
	 * "invalid_output" for an answer to an output request that does not pass validation.
	 */
	code: number | "network" | "empty" | "invalid_output";
	/** How many calls fail before the fault is used up. */
	times: number;
	/** Only calls whose prompt contains this text fail (a request that the model cannot take). */
	prompt?: string;
}

export interface EmulatorCall {
	model: string;
	at: number;
	ok: boolean;
	/** The Workers AI code of a failed call (null for a network failure). */
	code: number | null;
	/** How the request asked for structured output: `response_format`, `guided_json`, or null. */
	structured: "response_format" | "guided_json" | null;
	/** The tokens the answer reported (null: a failed call, or a model whose answer reports none). */
	usage: Usage | null;
}

const structuredOf = (inputs: Record<string, unknown>): EmulatorCall["structured"] =>
	inputs.response_format !== undefined ? "response_format" : inputs.guided_json !== undefined ? "guided_json" : null;

const ERROR_TEXT: Record<number, string> = {
	5007: "No such model",
	3042: "Invalid model ID",
	5004: "Invalid data",
	5006: "Error",
	3003: "Incomplete request",
	5016: "User has not agreed to Llama3.2 model terms",
	5035: "This model requires a Workers Paid plan",
	3006: "Request is too large",
	3007: "Request timeout",
	3008: "Request aborted",
	3036: "Account has exceeded its daily free allocation",
	3040: "Capacity temporarily exceeded, please try again",
	3021: "Rate limited: too many requests per minute",
};

function modelError(code: number, detail?: string): Error {
	return new Error(`${code}: ${ERROR_TEXT[code] ?? "Error"}${detail ? `: ${detail}` : ""}`);
}

/** Enough of an image to read its format and size (JPEG EXIF blocks can be long). */
const HEADER_BYTES = 256 * 1024;

/** The first HEADER_BYTES of a data URL's image: decoding all of it would cost the Worker what Workers AI spends. */
function dataUrlBytes(url: string): Uint8Array {
	const start = url.indexOf(",") + 1;
	const base64 = url.slice(start, start + Math.floor(HEADER_BYTES / 3) * 4);
	// The runtime's own decoder where it has one (workerd): a batch's ten images are decoded in the
	// consumer's isolate locally, work that Workers AI does on its side.
	const { fromBase64 } = Uint8Array as { fromBase64?: (text: string) => Uint8Array };
	if (typeof fromBase64 === "function") return fromBase64.call(Uint8Array, base64);
	const binary = atob(base64);
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}

/** The image bytes of a validated request, whichever way the model takes them; a URL is not fetched. */
function imageBytes(inputs: Record<string, unknown>): Uint8Array | string | null {
	const image = inputs.image;
	if (Array.isArray(image)) return Uint8Array.from(image as number[]);
	if (typeof image === "string") {
		if (image.startsWith("https://")) return image;
		if (image.startsWith("data:")) return dataUrlBytes(image);
		return Uint8Array.from(image, (c) => c.charCodeAt(0));
	}
	const messages = inputs.messages as { content: unknown }[] | undefined;
	for (const message of messages ?? []) {
		if (!Array.isArray(message.content)) continue;
		for (const part of message.content as { type: string; image_url?: { url: string } }[]) {
			if (part.type === "image_url" && part.image_url) return dataUrlBytes(part.image_url.url);
		}
	}
	return null;
}

/** Index of the first element of a byte array that is not an integer 0-255, or null. */
function firstBadByte(image: unknown): number | null {
	if (!Array.isArray(image)) return null;
	for (let i = 0; i < image.length; i++) {
		const v: unknown = image[i];
		if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) return i;
	}
	return null;
}

function promptOf(inputs: Record<string, unknown>): string | null {
	if (typeof inputs.prompt === "string") return inputs.prompt;
	if (inputs.task === "caption") return null;
	if (typeof inputs.question === "string") return inputs.question;
	const messages = inputs.messages as { content: unknown }[] | undefined;
	for (const message of messages ?? []) {
		if (typeof message.content === "string") return message.content;
		for (const part of message.content as { type: string; text?: string }[]) {
			if (part.type === "text" && part.text) return part.text;
		}
	}
	return null;
}

function describe(image: Uint8Array | string | null): string {
	if (image === null) return "no image";
	if (typeof image === "string") return `an image at ${image} (the emulator fetches no URL)`;
	try {
		const info = inspectImage(image.subarray(0, HEADER_BYTES));
		return `a ${info.format.toUpperCase()} image, ${info.width}×${info.height} pixels`;
	} catch {
		return `${image.length} bytes that are not a readable image`;
	}
}

/** The answer to an output request (alt text, tags, title, JSON, a language), from the image's bytes. */
function outputAnswer(
	instruction: NonNullable<ReturnType<typeof readInstruction>>,
	image: Uint8Array | string | null,
	invalid: boolean,
): string {
	const bytes = image instanceof Uint8Array ? image : new Uint8Array();
	let facts = { format: "unknown", width: 0, height: 0, bytes };
	try {
		const info = inspectImage(bytes.subarray(0, HEADER_BYTES));
		facts = { format: info.format, width: info.width, height: info.height, bytes };
	} catch {}
	return emulatedAnswer(instruction.output, facts, instruction.language, invalid);
}

/** A streamed answer (Server-Sent Events), what Workers AI sends unless `stream: false`. */
function eventStream(text: string): ReadableStream<Uint8Array> {
	const body = `data: ${JSON.stringify({ response: text })}\n\ndata: [DONE]\n\n`;
	return new Blob([body]).stream();
}

/**
 * Emulated token counts, deterministic and of a plausible size: an image is 729 tokens for
 * moondream (what it reports for one) and 576 for the other models (a 24 × 24 patch grid), text one
 * token per four bytes of UTF-8 (at least one).
 */
export function emulatedUsage(model: PublishedModel, prompt: string | null, answer: string): Usage {
	const textTokens = (text: string) => Math.max(1, Math.ceil(new TextEncoder().encode(text).length / 4));
	const imageTokens = model.output === "moondream" ? 729 : 576;
	return { inputTokens: imageTokens + (prompt === null ? 0 : textTokens(prompt)), outputTokens: textTokens(answer) };
}

/**
 * A `response_format` answer as Workers AI's JSON Mode page shows it: `response` is the JSON value
 * itself (an object or an array), not its text; an answer that is no JSON object or array stays text.
 */
function jsonValueOr(text: string): unknown {
	try {
		const value: unknown = JSON.parse(text);
		return typeof value === "object" && value !== null ? value : text;
	} catch {
		return text;
	}
}

/** The answer in the model's published output shape, with its tokens where that shape reports them. */
function answerIn(model: PublishedModel, inputs: Record<string, unknown>, text: string, usage: Usage): unknown {
	const tokens = { prompt_tokens: usage.inputTokens, completion_tokens: usage.outputTokens };
	const openAiUsage =
		model.usage === "usage" ? { usage: { ...tokens, total_tokens: usage.inputTokens + usage.outputTokens } } : {};
	switch (model.output) {
		case "moondream": {
			// Streaming is moondream's default: only `stream: false` gets a JSON answer.
			if (inputs.stream !== false) return eventStream(text);
			const metrics = {
				input_tokens: usage.inputTokens,
				output_tokens: usage.outputTokens,
				prefill_time_ms: 12,
				decode_time_ms: 40,
				ttft_ms: 14,
			};
			const skill = inputs.task === "caption" ? { caption: text } : { answer: text };
			return { ...skill, finish_reason: "stop", metrics };
		}
		case "choices":
			return { choices: [{ index: 0, message: { role: "assistant", content: text } }], ...openAiUsage };
		case "response":
			if (inputs.stream === true) return eventStream(text);
			return { response: inputs.response_format === undefined ? text : jsonValueOr(text), ...openAiUsage };
		case "description":
			return { description: text };
	}
}

export class ModelEmulator implements AiRunner {
	/** Settings that tests or the benchmark set; they win over the Worker's configuration. */
	overrides: Partial<EmulatorSettings> = {};
	readonly calls: EmulatorCall[] = [];
	/** Most calls that were running at the same time since the last reset. */
	maxInFlight = 0;
	private inFlight = 0;
	private faults: InjectedFault[] = [];
	/** Start times of the calls in the current window, per rate limit (task type or model id). */
	private windows = new Map<string, number[]>();

	constructor(private base: EmulatorSettings = DEFAULT_EMULATOR_SETTINGS) {}

	/** The configuration from the Worker's environment (overrides still win). */
	configure(base: EmulatorSettings): this {
		this.base = base;
		return this;
	}

	get settings(): EmulatorSettings {
		return { ...this.base, ...this.overrides };
	}

	inject(fault: InjectedFault): void {
		this.faults.push({ ...fault });
	}

	/** Clears injected faults, overrides, the call log and the rate-limit windows. */
	reset(): void {
		this.overrides = {};
		this.faults = [];
		this.windows.clear();
		this.calls.length = 0;
		this.maxInFlight = 0;
	}

	callsTo(model?: string): number {
		return this.calls.filter((c) => model === undefined || c.model === model).length;
	}

	async run(model: string, inputs: Record<string, unknown>): Promise<unknown> {
		const settings = this.settings;
		const at = Date.now();
		this.inFlight++;
		this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
		try {
			const { output, usage } = await this.answer(model, inputs, settings, at);
			this.calls.push({ model, at, ok: true, code: null, structured: structuredOf(inputs), usage });
			return output;
		} catch (err) {
			const code = /^(\d{4}):/.exec(err instanceof Error ? err.message : "")?.[1];
			const failed = { model, at, ok: false, code: code ? Number(code) : null, structured: structuredOf(inputs) };
			this.calls.push({ ...failed, usage: null });
			throw err;
		} finally {
			this.inFlight--;
		}
	}

	private async answer(
		model: string,
		inputs: Record<string, unknown>,
		s: EmulatorSettings,
		at: number,
	): Promise<{ output: unknown; usage: Usage | null }> {
		const published = PUBLISHED_MODELS.get(model);
		if (!published || s.goneModels.has(model)) throw modelError(5007, model);
		this.takeRateLimitSlot({ id: model, task: published.task }, s, at);
		if (s.retiredModels.has(model)) throw new Error(s.retiredError);
		const prompt = promptOf(inputs);
		const fault = this.faults.find(
			(f) =>
				f.times > 0 &&
				(f.model === undefined || f.model === model) &&
				(f.prompt === undefined || (prompt ?? "").includes(f.prompt)),
		);
		if (s.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, s.latencyMs));
		if (fault) fault.times--;
		if (!fault && s.faultRate > 0 && Math.random() < s.faultRate) throw modelError(3040);
		if (fault?.code === "network") throw new TypeError("Network connection lost.");
		if (typeof fault?.code === "number") throw modelError(fault.code);
		const badByte = firstBadByte(inputs.image);
		if (badByte !== null) throw modelError(5006, `'/image/${badByte}' must be an integer from 0 to 255`);
		// The byte array was checked above; zod checks the rest (per element it would cost the Worker
		// ~30 ms of CPU per 100 KB image, which Workers AI spends on its side, not in the Worker).
		const parsed = published.input.safeParse(Array.isArray(inputs.image) ? { ...inputs, image: [] } : inputs);
		if (!parsed.success) {
			const issue = parsed.error.issues[0];
			// Workers AI reports schema violations as 5006 with the JSON path of the offending field.
			throw modelError(5006, `'/${issue?.path.join("/") ?? ""}' ${issue?.message ?? "does not match the schema"}`);
		}
		const instruction = prompt === null ? null : readInstruction(prompt);
		const text =
			fault?.code === "empty"
				? "  "
				: instruction
					? outputAnswer(instruction, imageBytes(inputs), fault?.code === "invalid_output")
					: `Emulated caption (${model}): ${describe(imageBytes(inputs))}${prompt ? `. Prompt: "${prompt}"` : ""}.`;
		const usage = emulatedUsage(published, prompt, text);
		const output = answerIn(published, inputs, text, usage);
		// Logged as the answer carries it: a streamed answer or a model that reports none has none.
		return { output, usage: output instanceof ReadableStream || published.usage === "none" ? null : usage };
	}

	private takeRateLimitSlot(model: { id: string; task: PublishedModel["task"] }, s: EmulatorSettings, at: number) {
		const limit = rateLimitFor(model, s.rateLimits);
		if (!limit) return;
		const windowMs = 60_000 / s.timeScale;
		const window = this.windows.get(limit.name) ?? [];
		this.windows.set(limit.name, window);
		while (window.length > 0 && (window[0] ?? 0) <= at - windowMs) window.shift();
		if (window.length >= limit.perMinute) throw modelError(3021, `${limit.name}: ${limit.perMinute} per minute`);
		window.push(at);
	}
}

/** One emulator per isolate, so tests and the benchmark can script the one the consumer uses. */
export const emulator = new ModelEmulator();
