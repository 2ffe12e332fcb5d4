/**
 * Checks a model's answer against the job's output: length and shape for the text kinds, the JSON
 * Schema for `json_schema` (with @cfworker/json-schema, which compiles no code and so runs in
 * Workers). A pass gives the result (a string, the tags, the object) and its text form for the
 * `caption` column; a failure says what was wrong, in words the repair request passes on to the
 * model.
 */
import { dereference, ignoredKeyword, schemaArrayKeyword, schemaMapKeyword, Validator } from "@cfworker/json-schema";
import type { Output } from "./spec";

export const ALT_TEXT_MAX = 125;
export const TITLE_MAX = 80;
export const TAGS_MAX = 20;
export const TAG_MAX_LENGTH = 64;

export type Result = string | string[] | Record<string, unknown> | unknown[] | number | boolean | null;

/** A failure with `unusable` is the schema's fault (the validator threw), not the answer's. */
export type Checked = { ok: true; result: Result; text: string } | { ok: false; reason: string; unusable?: true };

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

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

/** The draft a schema is read under: draft-07 when its `$schema` says so, else 2020-12. */
const draftOf = (schema: Record<string, unknown>) =>
	typeof schema.$schema === "string" && schema.$schema.includes("draft-07") ? "7" : "2020-12";

function bySchema(text: string, schema: Record<string, unknown>): Checked {
	const json = jsonIn(text);
	if (!json.ok) return { ok: false, reason: "the answer is not valid JSON" };
	let outcome: ReturnType<Validator["validate"]>;
	try {
		outcome = new Validator(schema, draftOf(schema), false).validate(json.value);
	} catch (err) {
		// The schema, not the answer: no repair or retry can help (schemaProblem missed it).
		return { ok: false, unusable: true, reason: `the JSON Schema cannot be used: ${messageOf(err)}` };
	}
	const { valid, errors } = outcome;
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
const SUBSCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"] as const;
const SUBSCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"] as const;
const SUBSCHEMAS = [
	"items",
	"additionalItems",
	"unevaluatedItems",
	"additionalProperties",
	"unevaluatedProperties",
	"propertyNames",
	"not",
	"if",
	"then",
	"else",
	"contains",
] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNameList = (v: unknown) => Array.isArray(v) && v.every((r) => typeof r === "string");

/** Why `pattern` is not a regular expression the validator can compile (it uses the `u` flag), or null. */
function regexProblem(pattern: string): string | null {
	try {
		new RegExp(pattern, "u");
		return null;
	} catch (err) {
		return messageOf(err);
	}
}

/**
 * Whether `items` may be an array of schemas, the tuple form of draft-07 (and 2019-09), with
 * `additionalItems` for the items after them: unless the schema's `$schema` is 2020-12, where
 * `items` is one schema and `prefixItems` the tuple. The validator reads either form.
 */
const tuplesAllowed = (schema: Record<string, unknown>) =>
	!(typeof schema.$schema === "string" && schema.$schema.includes("2020-12"));

/** What is wrong with the structural keywords of a schema (the validator itself checks no schema), or null. */
function structureProblem(schema: unknown, at: string, tuples: boolean): string | null {
	if (typeof schema === "boolean") return null;
	if (!isObject(schema)) return `${at || "/"} is not a schema (an object or a boolean)`;
	const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
	const badType = types.find((t) => typeof t !== "string" || !JSON_TYPES.has(t));
	if (badType !== undefined) return `${at}/type: ${JSON.stringify(badType)} is not a JSON type`;
	if (schema.required !== undefined && !isNameList(schema.required)) {
		return `${at}/required must be an array of property names`;
	}
	if (schema.enum !== undefined && !Array.isArray(schema.enum)) return `${at}/enum must be an array`;
	// Regular expressions are compiled only when an answer reaches them: an invalid one would throw then.
	if (schema.pattern !== undefined) {
		if (typeof schema.pattern !== "string") return `${at}/pattern must be a regular expression (a string)`;
		const problem = regexProblem(schema.pattern);
		if (problem !== null)
			return `${at}/pattern ${JSON.stringify(schema.pattern)} is not a valid regular expression: ${problem}`;
	}
	if (isObject(schema.patternProperties)) {
		for (const key of Object.keys(schema.patternProperties)) {
			const problem = regexProblem(key);
			if (problem !== null) {
				return `${at}/patternProperties: the key ${JSON.stringify(key)} is not a valid regular expression: ${problem}`;
			}
		}
	}
	// Unknown formats are ignored, but the validator looks formats up in a plain object: a name it
	// inherits (`toString`, `valueOf`, `__proto__`) would be called as a format check, or throw.
	if (schema.format !== undefined) {
		if (typeof schema.format !== "string") return `${at}/format must be a string`;
		if (Object.hasOwn(Object.prototype, schema.format))
			return `${at}/format: ${JSON.stringify(schema.format)} is not a format`;
	}
	if (schema.dependentRequired !== undefined) {
		if (!isObject(schema.dependentRequired) || !Object.values(schema.dependentRequired).every(isNameList)) {
			return `${at}/dependentRequired must be an object of arrays of property names`;
		}
	}
	if (schema.dependencies !== undefined) {
		if (!isObject(schema.dependencies)) return `${at}/dependencies must be an object`;
		for (const [name, dependency] of Object.entries(schema.dependencies)) {
			if (Array.isArray(dependency)) {
				if (!isNameList(dependency)) return `${at}/dependencies/${name} must be an array of property names or a schema`;
				continue;
			}
			const problem = structureProblem(dependency, `${at}/dependencies/${name}`, tuples);
			if (problem) return problem;
		}
	}
	for (const key of SUBSCHEMA_MAPS) {
		const map = schema[key];
		if (map === undefined) continue;
		if (!isObject(map)) return `${at}/${key} must be an object of schemas`;
		for (const [name, sub] of Object.entries(map)) {
			const problem = structureProblem(sub, `${at}/${key}/${name}`, tuples);
			if (problem) return problem;
		}
	}
	for (const key of SUBSCHEMA_LISTS) {
		const list = schema[key];
		if (list === undefined) continue;
		if (!Array.isArray(list)) return `${at}/${key} must be an array of schemas`;
		for (const [i, sub] of list.entries()) {
			const problem = structureProblem(sub, `${at}/${key}/${i}`, tuples);
			if (problem) return problem;
		}
	}
	if (Array.isArray(schema.items)) {
		if (!tuples) {
			return `${at}/items is an array of schemas, the tuple form of draft-07; a draft 2020-12 schema (its $schema) writes a tuple as prefixItems`;
		}
		for (const [i, sub] of schema.items.entries()) {
			const problem = structureProblem(sub, `${at}/items/${i}`, tuples);
			if (problem) return problem;
		}
	}
	for (const key of SUBSCHEMAS) {
		if (schema[key] === undefined || (key === "items" && Array.isArray(schema.items))) continue;
		const problem = structureProblem(schema[key], `${at}/${key}`, tuples);
		if (problem) return problem;
	}
	return null;
}

const flag = (table: Record<string, boolean>, key: string) => Object.hasOwn(table, key) && table[key] === true;

/**
 * The first `$ref` the lookup does not hold, or null: the validator resolves a `$ref` only when an
 * answer reaches it, and throws then. The walk follows the keywords `dereference` follows, which
 * has written each `$ref`'s absolute URI on its schema (`__absolute_ref__`).
 */
function unresolvedRef(schema: unknown, lookup: Record<string, unknown>): string | null {
	if (!isObject(schema)) return null;
	const absolute = (schema as { __absolute_ref__?: unknown }).__absolute_ref__;
	if (schema.$ref !== undefined && (typeof absolute !== "string" || lookup[absolute] === undefined)) {
		return String(schema.$ref);
	}
	for (const [key, sub] of Object.entries(schema)) {
		if (flag(ignoredKeyword, key)) continue;
		const subs = Array.isArray(sub)
			? flag(schemaArrayKeyword, key)
				? sub
				: []
			: flag(schemaMapKeyword, key) && isObject(sub)
				? Object.values(sub)
				: [sub];
		for (const each of subs) {
			const ref = unresolvedRef(each, lookup);
			if (ref !== null) return ref;
		}
	}
	return null;
}

/**
 * A JSON Schema that cannot be used is refused when the job or preset is asked for, not when it
 * runs: its structural keywords are checked, its regular expressions compiled, its formats and
 * `$ref`s looked up, and the validator must be able to run it.
 */
export function schemaProblem(schema: Record<string, unknown>): string | null {
	const problem = structureProblem(schema, "", tuplesAllowed(schema));
	if (problem !== null) return problem;
	try {
		const ref = unresolvedRef(schema, dereference(schema));
		if (ref !== null) return `the $ref ${JSON.stringify(ref)} does not resolve to a schema of this one`;
		new Validator(schema, draftOf(schema), false).validate(null);
		return null;
	} catch (err) {
		return messageOf(err);
	}
}
