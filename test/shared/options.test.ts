/** Caption options (shared/jobs/options.ts): one precedence, the question flag, the options key. */
import { describe, expect, it } from "vitest";
import { JobFailure } from "../../shared/jobs/errors";
import { effectivePrompt, optionsKey, resolveOptions } from "../../shared/jobs/options";

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
		});
		expect(resolveOptions(NONE, {}, DEFAULTS)).toEqual({
			prompt: "Describe the image",
			question: false,
			maxTokens: 64,
			callbackUrl: null,
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
});
