/** Caption options (shared/jobs/options.ts): one precedence, the question flag, the options key. */
import { describe, expect, it } from "vitest";
import { JobFailure } from "../../shared/jobs/errors";
import { effectivePrompt, metadataOfJob, optionsKey, resolveOptions } from "../../shared/jobs/options";

const DEFAULTS = { prompt: "Describe the image", maxTokens: 64 };
const NONE = { prompt: null, max_tokens: null, callback_url: null };

describe("caption options", () => {
	it("explicit options win over metadata, metadata over the defaults, field by field", () => {
		const metadata = { prompt: "From metadata", "max-tokens": "32", "callback-url": "https://example.com/m" };
		expect(resolveOptions({ ...NONE, max_tokens: 16 }, metadata, DEFAULTS)).toEqual({
			prompt: "From metadata",
			question: true,
			maxTokens: 16,
			callbackUrl: "https://example.com/m",
			output: "caption",
			language: null,
			writeBack: null,
		});
		expect(resolveOptions(NONE, {}, DEFAULTS)).toEqual({
			prompt: "Describe the image",
			question: false,
			maxTokens: 64,
			callbackUrl: null,
			output: "caption",
			language: null,
			writeBack: null,
		});
	});

	it("a preset gives way to metadata and explicit options field by field (preset < metadata < explicit)", () => {
		const preset = {
			prompt: "Preset prompt",
			max_tokens: 100,
			output: "tags",
			language: "de",
			write_back: "sidecar:skip",
		};
		const metadata = { language: "fr", "max-tokens": "50" };
		const explicit = { ...NONE, max_tokens: 10 };
		expect(resolveOptions(explicit, metadata, DEFAULTS, preset)).toEqual({
			prompt: "Preset prompt",
			question: true,
			maxTokens: 10,
			callbackUrl: null,
			output: "tags",
			language: "fr",
			writeBack: { target: "sidecar", mode: "skip" },
		});
		const json = JSON.stringify({ json_schema: { type: "object" } });
		expect(resolveOptions({ ...NONE, output: "title" }, { output: json }, DEFAULTS, preset).output).toBe("title");
		expect(resolveOptions(NONE, { output: json }, DEFAULTS, preset).output).toEqual({
			json_schema: { type: "object" },
		});
		expect(resolveOptions(NONE, {}, DEFAULTS, preset)).toMatchObject({
			output: "tags",
			language: "de",
			maxTokens: 100,
		});
	});

	it("the output options' text forms are checked like the others", () => {
		const invalid: Record<string, string>[] = [
			{ output: "haiku" },
			{ output: "{not json" },
			{ language: "?" },
			{ "write-back": "disk" },
		];
		for (const metadata of invalid) {
			expect(() => resolveOptions(NONE, metadata, DEFAULTS)).toThrow(JobFailure);
		}
		expect(resolveOptions(NONE, { "write-back": "metadata" }, DEFAULTS).writeBack).toEqual({
			target: "metadata",
			mode: "overwrite",
		});
	});

	it("a prompt the job brings is a question even when its text is the default prompt's", () => {
		expect(resolveOptions({ ...NONE, prompt: DEFAULTS.prompt }, {}, DEFAULTS)).toMatchObject({ question: true });
		expect(resolveOptions(NONE, { prompt: DEFAULTS.prompt }, DEFAULTS)).toMatchObject({ question: true });
	});

	it("an invalid value fails the job with invalid_options, naming where it came from", () => {
		const resolve = () => resolveOptions(NONE, { "max-tokens": "lots" }, DEFAULTS);
		expect(resolve).toThrow(JobFailure);
		expect(resolve).toThrow(/^Invalid max-tokens metadata "lots"/);
	});

	it("the prompt a job would run with follows the same precedence; an invalid one counts as absent", () => {
		expect(effectivePrompt({ prompt: "Mine" }, { prompt: "Theirs" }, DEFAULTS.prompt)).toBe("Mine");
		expect(effectivePrompt({ prompt: null }, { prompt: "Theirs" }, DEFAULTS.prompt)).toBe("Theirs");
		expect(effectivePrompt({ prompt: null }, { prompt: " " }, DEFAULTS.prompt)).toBe(DEFAULTS.prompt);
	});

	it("the options key is empty without options and differs with any option's value", async () => {
		expect(await optionsKey({})).toBe("");
		const keys = await Promise.all([
			optionsKey({ prompt: "a" }),
			optionsKey({ prompt: "b" }),
			optionsKey({ "max-tokens": "a" }),
			optionsKey({ "callback-url": "a" }),
		]);
		expect(keys.every((key) => /^[0-9a-f]{64}$/.test(key))).toBe(true);
		expect(new Set(keys).size).toBe(4);
		expect(await optionsKey({ prompt: "a", unrelated: "x" })).toBe(keys[0]);
	});

	it("the output options join the key only when present, by name, so older objects keep theirs", async () => {
		const keys = await Promise.all([
			optionsKey({ output: "x" }),
			optionsKey({ language: "x" }),
			optionsKey({ "write-back": "x" }),
			optionsKey({ prompt: "a", output: "tags" }),
		]);
		expect(new Set(keys).size).toBe(4);
		expect(await optionsKey({ prompt: "a" })).not.toBe(keys[3]);
		// The key of an object with only the first three options is what it was before outputs existed.
		const before = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(["a", null, null])));
		const hex = [...new Uint8Array(before)].map((b) => b.toString(16).padStart(2, "0")).join("");
		expect(await optionsKey({ prompt: "a" })).toBe(hex);
	});

	it("an upload's job resolves against its own options when a later upload of the same bytes wrote others; a POST /v1/jobs job against the object's", async () => {
		const own = { prompt: "What colour?", max_tokens: null, callback_url: null, output: "title" };
		const later = { language: "de", output: "tags" };
		const ownKey = await optionsKey({ prompt: "What colour?", output: "title" });
		for (const upload of [
			{ source: "notification", replaces: null },
			// A job made in a notification job's place (the same bytes written back: shared/jobs/written-again.ts).
			{ source: "api", replaces: "job_notified" },
		]) {
			expect(await metadataOfJob({ ...own, ...upload, options_key: ownKey }, later)).toEqual({
				prompt: "What colour?",
				output: "title",
			});
		}
		// A job of POST /v1/jobs (options key '') takes the object's metadata for what it did not give.
		const asked = { ...own, source: "api", replaces: null, options_key: "" };
		expect(await metadataOfJob(asked, later)).toEqual(later);
	});
});
