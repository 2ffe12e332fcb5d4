/**
 * Workers AI emulator for local development and tests (SPEC §4). It validates each request
 * against the model's published input schema, answers deterministically with a caption that says
 * it is emulated and describes the image it was given (format, width × height), and can inject
 * latency, gone models, rate limiting and any Workers AI error code.
 */
import { inspectImage } from "../image/sniff";
import { MODEL_INPUT_SCHEMAS, MODEL_OUTPUT_STYLE } from "./input-schemas";
import type { AiRunner } from "./types";

export interface EmulatorSettings {
	/** Added to every call, in milliseconds. */
	latencyMs: number;
	/** Models that answer `5007: No such model` (as a deprecated model does). */
	goneModels: ReadonlySet<string>;
	/** Requests per minute across all models before `3021` (Workers AI: 720 for image-to-text). */
	requestsPerMinute: number | null;
	/** Divides the rate-limit window (a minute) so benchmarks can run faster than real time. */
	timeScale: number;
}

export interface InjectedFault {
	/** Only calls to this model fail; every model when absent. */
	model?: string;
	/** Workers AI error code to throw, "network" for a connection failure, "empty" for a blank answer. */
	code: number | "network" | "empty";
	/** How many calls fail before the fault is used up. */
	times: number;
}

export interface EmulatorCall {
	model: string;
	at: number;
	ok: boolean;
}

const ERROR_TEXT: Record<number, string> = {
	5007: "No such model",
	3042: "Invalid model ID",
	5004: "Invalid data",
	5006: "Error",
	3003: "Incomplete request",
	5016: "Model agreement not accepted",
	3006: "Request is too large",
	3007: "Request timeout",
	3008: "Request aborted",
	3036: "Account has exceeded its daily free allocation",
	3040: "Capacity temporarily exceeded, please try again",
	3021: "Rate limited: too many requests per minute",
};

export const DEFAULT_EMULATOR_SETTINGS: EmulatorSettings = {
	latencyMs: 0,
	goneModels: new Set(),
	requestsPerMinute: null,
	timeScale: 1,
};

function modelError(code: number, detail?: string): Error {
	return new Error(`${code}: ${ERROR_TEXT[code] ?? "Error"}${detail ? `: ${detail}` : ""}`);
}

/** The image bytes of a validated request, whichever way the model takes them. */
function imageBytes(inputs: Record<string, unknown>): Uint8Array | null {
	const image = inputs.image;
	if (Array.isArray(image)) return Uint8Array.from(image as number[]);
	if (typeof image === "string") return Uint8Array.from(image, (c) => c.charCodeAt(0));
	const messages = inputs.messages as { content: unknown }[] | undefined;
	for (const message of messages ?? []) {
		if (!Array.isArray(message.content)) continue;
		for (const part of message.content as { type: string; image_url?: { url: string } }[]) {
			if (part.type !== "image_url" || !part.image_url) continue;
			const base64 = part.image_url.url.slice(part.image_url.url.indexOf(",") + 1);
			return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
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
	const messages = inputs.messages as { content: unknown }[] | undefined;
	for (const message of messages ?? []) {
		if (typeof message.content === "string") return message.content;
		for (const part of message.content as { type: string; text?: string }[]) {
			if (part.type === "text" && part.text) return part.text;
		}
	}
	return null;
}

function describe(bytes: Uint8Array | null): string {
	if (!bytes) return "no image";
	try {
		const info = inspectImage(bytes.subarray(0, 256 * 1024));
		return `a ${info.format.toUpperCase()} image, ${info.width}×${info.height} pixels`;
	} catch {
		return `${bytes.length} bytes that are not a readable image`;
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
	private window: number[] = [];

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

	/** Clears injected faults, overrides, the call log and the rate-limit window. */
	reset(): void {
		this.overrides = {};
		this.faults = [];
		this.window = [];
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
			const output = await this.answer(model, inputs, settings, at);
			this.calls.push({ model, at, ok: true });
			return output;
		} catch (err) {
			this.calls.push({ model, at, ok: false });
			throw err;
		} finally {
			this.inFlight--;
		}
	}

	private async answer(model: string, inputs: Record<string, unknown>, s: EmulatorSettings, at: number) {
		const schema = MODEL_INPUT_SCHEMAS.get(model);
		if (!schema || s.goneModels.has(model)) throw modelError(5007, model);
		this.takeRateLimitSlot(s, at);
		const fault = this.faults.find((f) => f.times > 0 && (f.model === undefined || f.model === model));
		if (s.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, s.latencyMs));
		if (fault) fault.times--;
		if (fault?.code === "network") throw new TypeError("Network connection lost.");
		if (typeof fault?.code === "number") throw modelError(fault.code);
		const badByte = firstBadByte(inputs.image);
		if (badByte !== null) throw modelError(5006, `'/image/${badByte}' must be an integer from 0 to 255`);
		// The byte array was checked above; zod checks the rest (per element it would cost the Worker
		// ~30 ms of CPU per 100 KB image, which Workers AI spends on its side, not in the Worker).
		const parsed = schema.safeParse(Array.isArray(inputs.image) ? { ...inputs, image: [] } : inputs);
		if (!parsed.success) {
			const issue = parsed.error.issues[0];
			// Workers AI reports schema violations as 5006 with the JSON path of the offending field.
			throw modelError(5006, `'/${issue?.path.join("/") ?? ""}' ${issue?.message ?? "does not match the schema"}`);
		}
		const prompt = promptOf(inputs);
		const caption =
			fault?.code === "empty"
				? "  "
				: `Emulated caption (${model}): ${describe(imageBytes(inputs))}${prompt ? `. Prompt: "${prompt}"` : ""}.`;
		switch (MODEL_OUTPUT_STYLE.get(model)) {
			case "choices":
				return { choices: [{ index: 0, message: { role: "assistant", content: caption } }] };
			case "response":
				return { response: caption };
			default:
				return { description: caption };
		}
	}

	private takeRateLimitSlot(s: EmulatorSettings, at: number): void {
		if (s.requestsPerMinute === null) return;
		const windowMs = 60_000 / s.timeScale;
		while (this.window.length > 0 && (this.window[0] ?? 0) <= at - windowMs) this.window.shift();
		if (this.window.length >= s.requestsPerMinute) throw modelError(3021);
		this.window.push(at);
	}
}

/** One emulator per isolate, so tests and the benchmark can script the one the consumer uses. */
export const emulator = new ModelEmulator();
