/**
 * Output kinds end to end through the consumer: each kind's shape and limits on the job row and
 * the Job JSON, the repair of a first answer that fails validation, `invalid_output` when the
 * model never satisfies the schema, and language routing past models that cannot write it.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { toJob } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { checkOutput } from "../../shared/outputs/validate";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { GEMMA, LLAVA, MISTRAL, MOONDREAM, resetModels, SCOUT } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

async function captionWith(metadata: Record<string, string>, name = "small.png") {
	const key = uniqueKey(name);
	const { ids, result } = await runConsumer([await upload(key, await fixture(name), metadata)]);
	expect(result.explicitAcks).toEqual(ids);
	return onlyJob(key);
}

const PRODUCT = {
	type: "object",
	required: ["title", "width", "height", "colour", "tags", "on_sale"],
	additionalProperties: false,
	properties: {
		title: { type: "string", maxLength: 40 },
		width: { type: "integer", minimum: 1 },
		height: { type: "integer", minimum: 1 },
		colour: { type: "string" },
		tags: { type: "array", items: { type: "string" }, minItems: 1, maxItems: 3 },
		on_sale: { type: "boolean" },
		condition: { enum: ["new", "used"] },
	},
};

describe("output kinds", () => {
	it("caption stays today's free text: result is the caption string", async () => {
		const job = await captionWith({});
		expect(job.status).toBe("succeeded");
		const json = toJob(job);
		expect(json.output).toBe("caption");
		expect(json.language).toBeNull();
		expect(json.result).toBe(job.caption);
		expect(json.caption).toMatch(/^Emulated caption/);
	});

	it("alt_text is one sentence of at most 125 characters without an 'image of' lead-in", async () => {
		const job = await captionWith({ output: "alt_text" });
		const json = toJob(job);
		expect(json).toMatchObject({ status: "succeeded", output: "alt_text" });
		expect(typeof json.result).toBe("string");
		const text = json.result as string;
		expect(text.length).toBeLessThanOrEqual(125);
		expect(text).not.toMatch(/^(an? )?(image|picture) of/i);
		expect(text).toMatch(/PNG image, \d+×\d+ pixels\.$/);
		expect(json.caption).toBe(text);
	});

	it("tags are 1-20 lowercase tags; caption joins them with ', '", async () => {
		const job = await captionWith({ output: "tags" });
		const json = toJob(job);
		expect(json.output).toBe("tags");
		const tags = json.result as string[];
		expect(Array.isArray(tags)).toBe(true);
		expect(tags.length).toBeGreaterThanOrEqual(1);
		expect(tags.length).toBeLessThanOrEqual(20);
		for (const t of tags) expect(t).toBe(t.toLowerCase());
		expect(tags.slice(0, 2)).toEqual(["png", expect.stringMatching(/^(square|landscape|portrait)$/)]);
		expect(json.caption).toBe(tags.join(", "));
	});

	it("title is at most 80 characters", async () => {
		const json = toJob(await captionWith({ output: "title" }, "small.jpg"));
		expect(json.output).toBe("title");
		expect((json.result as string).length).toBeLessThanOrEqual(80);
		expect(json.result).toMatch(/^JPEG in [a-z]+, \d+×\d+$/);
	});

	it("json_schema gives an object that satisfies the schema; caption is its JSON text", async () => {
		const job = await captionWith({ output: JSON.stringify({ json_schema: PRODUCT }) });
		const json = toJob(job);
		expect(json).toMatchObject({ status: "succeeded", output: "json_schema" });
		const record = json.result as Record<string, unknown>;
		expect(Object.keys(record).sort()).toEqual([...Object.keys(PRODUCT.properties)].sort());
		expect(record.width).toBeGreaterThan(0);
		expect((record.tags as string[]).length).toBeLessThanOrEqual(3);
		expect(["new", "used"]).toContain(record.condition);
		expect(JSON.parse(json.caption ?? "")).toEqual(record);
	});

	it("an invalid output value fails the job with invalid_options, without a model call", async () => {
		const job = await captionWith({ output: "haiku" });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options" });
		expect(job.error_message).toContain("output");
		expect(emulator.callsTo()).toBe(0);
	});

	it("a JSON Schema that cannot be compiled (bucket metadata) fails invalid_options before any model call", async () => {
		const schema = { type: "object", properties: { name: { type: "string", pattern: "(" } }, required: ["name"] };
		const job = await captionWith({ output: JSON.stringify({ json_schema: schema }) });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options", attempts: 1 });
		expect(job.error_message).toContain("Invalid regular expression");
		expect(emulator.callsTo()).toBe(0);
	});

	it("a schema the validator throws on when checking an answer is the schema's fault, not the answer's", () => {
		const checked = checkOutput({ json_schema: { type: "string", pattern: "(" } }, '"a"');
		expect(checked).toMatchObject({ ok: false, unusable: true });
		expect(checkOutput({ json_schema: { type: "string", pattern: "^a$" } }, '"a"')).toMatchObject({ ok: true });
	});
	it("a draft-07 tuple (items as an array, additionalItems) is produced and checked item by item", async () => {
		const tuple = {
			$schema: "http://json-schema.org/draft-07/schema#",
			type: "array",
			items: [{ type: "integer", minimum: 1 }, { type: "string" }],
			additionalItems: false,
		};
		const job = await captionWith({ output: JSON.stringify({ json_schema: tuple }) });
		expect(job.status).toBe("succeeded");
		const result = JSON.parse(job.result ?? "null");
		expect(result).toEqual([expect.any(Number), expect.any(String)]);
		const output = { json_schema: tuple };
		expect(checkOutput(output, '[3, "a"]')).toMatchObject({ ok: true });
		expect(checkOutput(output, '["a", 3]')).toMatchObject({ ok: false });
		expect(checkOutput(output, '[3, "a", 4]')).toMatchObject({ ok: false });
	});
});

describe("validation and repair", () => {
	it("a schema the emulator first violates is repaired by a second request that says what was wrong", async () => {
		emulator.inject({ code: "invalid_output", times: 1 });
		const job = await captionWith({ output: JSON.stringify({ json_schema: PRODUCT }) });
		expect(job.status).toBe("succeeded");
		expect(emulator.callsTo()).toBe(2);
		expect(Object.keys(JSON.parse(job.result ?? "{}"))).toContain("title");
	});

	it("tags over the limit are repaired too", async () => {
		emulator.inject({ code: "invalid_output", times: 1 });
		const job = await captionWith({ output: "tags" });
		expect(job.status).toBe("succeeded");
		expect(JSON.parse(job.result ?? "[]").length).toBeLessThanOrEqual(20);
		expect(emulator.callsTo()).toBe(2);
	});

	it("a schema never satisfied fails the job invalid_output with the reason, after exactly one repair", async () => {
		emulator.inject({ code: "invalid_output", times: 10 });
		const job = await captionWith({ output: JSON.stringify({ json_schema: PRODUCT }) });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_output", result: null, caption: null });
		expect(job.error_message).toContain("does not satisfy the schema");
		expect(job.error_message).toContain("required");
		expect(emulator.callsTo()).toBe(2);
	});

	it("alt text that keeps an 'image of' lead-in or runs long fails invalid_output", async () => {
		emulator.inject({ code: "invalid_output", times: 2 });
		const job = await captionWith({ output: "alt_text" });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_output" });
		expect(job.error_message).toMatch(/characters|lead-in/);
	});
});

describe("language", () => {
	it("a German job skips the models that write only English and is written in German", async () => {
		const job = await captionWith({ output: "title", language: "de" });
		expect(job).toMatchObject({ status: "succeeded", language: "de" });
		expect(job.model).toBe(MISTRAL);
		// A text result is the caption (stored once).
		expect(job.result).toBeNull();
		expect(job.caption).toContain("[de]");
		for (const skipped of [MOONDREAM, LLAVA, SCOUT]) expect(emulator.callsTo(skipped)).toBe(0);
	});

	it("a language tag is canonicalised (pt-br → pt-BR); English needs no routing", async () => {
		const pt = await captionWith({ language: "pt-br" });
		expect(pt).toMatchObject({ status: "succeeded", language: "pt-BR" });
		expect([MISTRAL, GEMMA]).toContain(pt.model);
		const en = await captionWith({ language: "en-GB" });
		expect(en).toMatchObject({ status: "succeeded", language: "en-GB", model: MOONDREAM });
	});

	it("when no model of the chain writes the language the job fails model_unavailable", async () => {
		const key = uniqueKey("small.png");
		await runConsumer([await upload(key, await fixture("small.png"), { language: "fr" })], {
			env: { MODEL_CHAIN: `${MOONDREAM},${LLAVA}` },
		});
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "model_unavailable" });
		expect(job.error_message).toContain("fr");
		expect(emulator.callsTo()).toBe(0);
	});

	it("a malformed language tag fails the job with invalid_options", async () => {
		const job = await captionWith({ language: "not a language!" });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options" });
	});

	it("a well-formed tag that is no ISO 639 language (englisch) fails invalid_options without a model call", async () => {
		const job = await captionWith({ language: "englisch" });
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options", caption: null });
		expect(job.error_message).toContain("pt-BR");
		expect(emulator.callsTo()).toBe(0);
	});

	it("a language's English name in metadata (German), as stored before tags were checked, is its code", async () => {
		const job = await captionWith({ language: "German" });
		expect(job).toMatchObject({ status: "succeeded", language: "de", model: MISTRAL });
	});
});

describe("structured output requests", () => {
	it("mistral gets the schema as guided_json, scout and gemma as response_format, moondream in the prompt only", async () => {
		const schema = JSON.stringify({ json_schema: PRODUCT });
		const german = await captionWith({ output: schema, language: "de" });
		expect(german).toMatchObject({ status: "succeeded", model: MISTRAL });
		expect(emulator.calls.map((c) => [c.model, c.structured])).toEqual([[MISTRAL, "guided_json"]]);
		for (const [model, structured] of [
			[SCOUT, "response_format"],
			[GEMMA, "response_format"],
			[MOONDREAM, null],
		] as const) {
			emulator.reset();
			const key = uniqueKey("small.png");
			await runConsumer([await upload(key, await fixture("small.png"), { output: schema })], {
				env: { MODEL_CHAIN: model },
			});
			expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model });
			expect(emulator.calls.map((c) => c.structured)).toEqual([structured]);
		}
	});
});
