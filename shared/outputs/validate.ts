/**
 * Checks a model's answer against the job's output: length and shape for the text kinds, the JSON
 * Schema for `json_schema` (with @cfworker/json-schema, which compiles no code and so runs in
 * Workers). A pass gives the result (a string, the tags, the object) and its text form for the
 * `caption` column; a failure says what was wrong, in words the repair request passes on to the
 * model.
 */
import { Validator } from "@cfworker/json-schema";
import type { Output } from "./spec";

export const ALT_TEXT_MAX = 125;
export const TITLE_MAX = 80;
export const TAGS_MAX = 20;
export const TAG_MAX_LENGTH = 64;

export type Result = string | string[] | Record<string, unknown> | unknown[] | number | boolean | null;

export type Checked = { ok: true; result: Result; text: string } | { ok: false; reason: string };

const LEAD_IN = /^(an? |the )?(image|picture|photo|photograph)( of|:)/i;

/** Quotes and surrounding white space a model often adds around a one-line answer. */
const unquote = (text: string) =>
	text
		.trim()
		.replace(/^["'“”]+|["'“”]+$/g, "")
		.trim();

function oneLine(text: string, max: number, what: string): Checked {
	const value = unquote(text);
	if (value === "") return { ok: false, reason: `the ${what} is empty` };
	if (/[\r\n]/.test(value)) return { ok: false, reason: `the ${what} must be one line` };
	if ([...value].length > max) {
		return { ok: false, reason: `the ${what} has ${[...value].length} characters; at most ${max} are allowed` };
	}
	return { ok: true, result: value, text: value };
}

function tags(text: string): Checked {
	const list = text
		.split(/[,\n]/)
		.map((t) =>
			unquote(t)
				.replace(/^[-*#•\s]+/, "")
				.trim()
				.toLowerCase(),
		)
		.filter((t) => t !== "");
	const unique = [...new Set(list)];
	if (unique.length === 0) return { ok: false, reason: "there are no tags" };
	if (unique.length > TAGS_MAX)
		return { ok: false, reason: `there are ${unique.length} tags; at most ${TAGS_MAX} are allowed` };
	const long = unique.find((t) => t.length > TAG_MAX_LENGTH);
	if (long) return { ok: false, reason: `the tag "${long.slice(0, 40)}…" is longer than ${TAG_MAX_LENGTH} characters` };
	return { ok: true, result: unique, text: unique.join(", ") };
}

/** The JSON in an answer: the whole text, or the inside of a ```json fence. */
function jsonIn(text: string): { ok: true; value: unknown } | { ok: false } {
	const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(text)?.[1];
	try {
		return { ok: true, value: JSON.parse((fenced ?? text).trim()) };
	} catch {
		return { ok: false };
	}
}

function bySchema(text: string, schema: Record<string, unknown>): Checked {
	const json = jsonIn(text);
	if (!json.ok) return { ok: false, reason: "the answer is not valid JSON" };
	const draft = typeof schema.$schema === "string" && schema.$schema.includes("draft-07") ? "7" : "2020-12";
	const { valid, errors } = new Validator(schema, draft, false).validate(json.value);
	if (!valid) {
		const first = errors.find((e) => e.keyword !== "properties" && e.keyword !== "items") ?? errors[0];
		return {
			ok: false,
			reason: `the JSON does not satisfy the schema: ${first ? `${first.instanceLocation} ${first.error}` : "invalid"}`,
		};
	}
	return { ok: true, result: json.value as Result, text: JSON.stringify(json.value) };
}

export function checkOutput(output: Output, answer: string): Checked {
	if (typeof output !== "string") return bySchema(answer, output.json_schema);
	switch (output) {
		case "caption": {
			const caption = answer.trim();
			return caption === ""
				? { ok: false, reason: "the caption is empty" }
				: { ok: true, result: caption, text: caption };
		}
		case "alt_text": {
			const checked = oneLine(answer, ALT_TEXT_MAX, "alt text");
			if (checked.ok && LEAD_IN.test(checked.text)) {
				return { ok: false, reason: 'the alt text starts with a lead-in such as "image of"' };
			}
			return checked;
		}
		case "title":
			return oneLine(answer, TITLE_MAX, "title");
		case "tags":
			return tags(answer);
	}
}

const JSON_TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
const SUBSCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions"] as const;
const SUBSCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"] as const;
const SUBSCHEMAS = ["items", "additionalProperties", "not", "if", "then", "else", "contains"] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** What is wrong with the structural keywords of a schema (the validator itself checks no schema), or null. */
function structureProblem(schema: unknown, at: string): string | null {
	if (typeof schema === "boolean") return null;
	if (!isObject(schema)) return `${at || "/"} is not a schema (an object or a boolean)`;
	const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
	const badType = types.find((t) => typeof t !== "string" || !JSON_TYPES.has(t));
	if (badType !== undefined) return `${at}/type: ${JSON.stringify(badType)} is not a JSON type`;
	if (
		schema.required !== undefined &&
		!(Array.isArray(schema.required) && schema.required.every((r) => typeof r === "string"))
	) {
		return `${at}/required must be an array of property names`;
	}
	if (schema.enum !== undefined && !Array.isArray(schema.enum)) return `${at}/enum must be an array`;
	for (const key of SUBSCHEMA_MAPS) {
		const map = schema[key];
		if (map === undefined) continue;
		if (!isObject(map)) return `${at}/${key} must be an object of schemas`;
		for (const [name, sub] of Object.entries(map)) {
			const problem = structureProblem(sub, `${at}/${key}/${name}`);
			if (problem) return problem;
		}
	}
	for (const key of SUBSCHEMA_LISTS) {
		const list = schema[key];
		if (list === undefined) continue;
		if (!Array.isArray(list)) return `${at}/${key} must be an array of schemas`;
		for (const [i, sub] of list.entries()) {
			const problem = structureProblem(sub, `${at}/${key}/${i}`);
			if (problem) return problem;
		}
	}
	for (const key of SUBSCHEMAS) {
		if (schema[key] === undefined) continue;
		const problem = structureProblem(schema[key], `${at}/${key}`);
		if (problem) return problem;
	}
	return null;
}

/**
 * A JSON Schema that cannot be used is refused when the job or preset is asked for, not when it
 * runs: its structural keywords are checked, and the validator must be able to run it (a `$ref`
 * it cannot resolve throws).
 */
export function schemaProblem(schema: Record<string, unknown>): string | null {
	const problem = structureProblem(schema, "");
	if (problem !== null) return problem;
	try {
		new Validator(schema, "2020-12", false).validate(null);
		return null;
	} catch (err) {
		return err instanceof Error ? err.message : String(err);
	}
}
