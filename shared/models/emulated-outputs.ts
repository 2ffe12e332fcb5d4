/**
 * What the model emulator answers for each output kind (shared/outputs/instructions.ts), worked
 * out from the image alone so that tests can assert on shapes: its format, its size and a colour
 * picked from its bytes (the emulator decodes no pixels). A JSON Schema is filled in from its
 * types, bounds, enums and defaults. `invalid` gives an answer the validator rejects, for the
 * repair path.
 */
import type { Output } from "../outputs/spec";

/** What the emulator knows of an image. */
export interface ImageFacts {
	format: string;
	width: number;
	height: number;
	bytes: Uint8Array;
}

const COLOURS = ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "grey"] as const;

/** A colour name from an FNV-1a hash of the first bytes: the same image always has the same colour. */
export function colourOf(bytes: Uint8Array): string {
	let hash = 0x811c9dc5;
	for (let i = 0; i < Math.min(bytes.length, 4096); i++) hash = Math.imul(hash ^ (bytes[i] ?? 0), 0x01000193);
	return COLOURS[(hash >>> 0) % COLOURS.length] ?? "grey";
}

const orientation = (f: ImageFacts) =>
	f.width === f.height ? "square" : f.width > f.height ? "landscape" : "portrait";
const sizeClass = (f: ImageFacts) => {
	const side = Math.max(f.width, f.height);
	return side < 256 ? "small" : side < 1600 ? "medium" : "large";
};

export function emulatedTags(f: ImageFacts): string[] {
	return [f.format, orientation(f), sizeClass(f), colourOf(f.bytes), "emulated"];
}

const withLanguage = (text: string, language: string | null) => (language === null ? text : `[${language}] ${text}`);

/** The emulator's answer for `output`, as the text a model would send. */
export function emulatedAnswer(output: Output, f: ImageFacts, language: string | null, invalid: boolean): string {
	const colour = colourOf(f.bytes);
	const upper = f.format.toUpperCase();
	if (typeof output !== "string") {
		if (!invalid) return JSON.stringify(fillSchema(output.json_schema, f, language));
		const required = Array.isArray(output.json_schema.required) && output.json_schema.required.length > 0;
		return required ? "{}" : '{"emulated": ';
	}
	switch (output) {
		case "alt_text":
			return invalid
				? `Image of ${"a very long description ".repeat(8)}`
				: withLanguage(`A ${colour} ${orientation(f)} ${upper} image, ${f.width}×${f.height} pixels.`, language);
		case "title":
			return invalid
				? `${"Emulated title ".repeat(10)}`
				: withLanguage(`${upper} in ${colour}, ${f.width}×${f.height}`, language);
		case "tags":
			return invalid ? Array.from({ length: 25 }, (_, i) => `tag${i}`).join(", ") : emulatedTags(f).join(", ");
		case "caption":
			return invalid
				? " "
				: withLanguage(`Emulated caption: a ${colour} ${upper} image, ${f.width}×${f.height} pixels.`, language);
	}
}

type Schema = Record<string, unknown>;

const asSchema = (v: unknown): Schema =>
	typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Schema) : {};
const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

function clamp(value: number, s: Schema): number {
	let v = value;
	const min =
		num(s.minimum) ?? (num(s.exclusiveMinimum) === undefined ? undefined : (num(s.exclusiveMinimum) ?? 0) + 1);
	const max =
		num(s.maximum) ?? (num(s.exclusiveMaximum) === undefined ? undefined : (num(s.exclusiveMaximum) ?? 0) - 1);
	if (min !== undefined) v = Math.max(v, min);
	if (max !== undefined) v = Math.min(v, max);
	return v;
}

function typeOf(s: Schema): string {
	const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
	if (typeof t === "string") return t;
	if (s.properties) return "object";
	if (s.items || s.prefixItems) return "array";
	return "string";
}

function fillString(s: Schema, name: string, f: ImageFacts, language: string | null): string {
	if (s.format === "date-time") return "2026-01-01T00:00:00Z";
	if (s.format === "date") return "2026-01-01";
	if (s.format === "uri" || s.format === "url") return "https://example.com/emulated";
	if (s.format === "email") return "emulated@example.com";
	const lower = name.toLowerCase();
	let text = lower.includes("colo") ? colourOf(f.bytes) : lower.includes("format") ? f.format : "";
	if (text === "")
		text = withLanguage(
			`Emulated ${name || "text"} of a ${colourOf(f.bytes)} ${f.format.toUpperCase()} image`,
			language,
		);
	const min = num(s.minLength) ?? 0;
	const max = num(s.maxLength);
	if (text.length < min) text = text.padEnd(min, ".");
	return max === undefined ? text : text.slice(0, max);
}

/** A value that satisfies `schema` (for the keywords a catalogue record uses), from the image's facts. */
export function fillSchema(schema: unknown, f: ImageFacts, language: string | null, name = "", depth = 0): unknown {
	const s = asSchema(schema);
	if ("const" in s) return s.const;
	if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[f.width % s.enum.length];
	if ("default" in s) return s.default;
	const branch = [s.anyOf, s.oneOf, s.allOf].find((b) => Array.isArray(b) && b.length > 0) as unknown[] | undefined;
	if (branch) return fillSchema(branch[0], f, language, name, depth + 1);
	if (depth > 8) return null;
	const lower = name.toLowerCase();
	switch (typeOf(s)) {
		case "object": {
			const out: Record<string, unknown> = {};
			for (const [key, sub] of Object.entries(asSchema(s.properties)))
				out[key] = fillSchema(sub, f, language, key, depth + 1);
			return out;
		}
		case "array": {
			// A tuple: 2020-12's prefixItems, or draft-07's array of schemas in items.
			const tuple = Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : null;
			if (tuple) return tuple.map((sub, i) => fillSchema(sub, f, language, `${name}${i}`, depth + 1));
			const items = asSchema(s.items);
			const min = Math.max(num(s.minItems) ?? 1, 1);
			const max = num(s.maxItems) ?? Number.POSITIVE_INFINITY;
			if (
				typeOf(items) === "string" &&
				!items.enum &&
				!items.const &&
				(lower.includes("tag") || lower.includes("keyword"))
			) {
				const tags = emulatedTags(f);
				return tags.slice(0, Math.min(max, Math.max(min, tags.length)));
			}
			const count = Math.min(max, min);
			return Array.from({ length: count }, (_, i) => fillSchema(items, f, language, `${name}${i}`, depth + 1));
		}
		case "integer":
		case "number": {
			const guess = lower.includes("width") ? f.width : lower.includes("height") ? f.height : f.bytes.length % 100;
			return clamp(guess, s);
		}
		case "boolean":
			return f.width >= f.height;
		case "null":
			return null;
		default:
			return fillString(s, name, f, language);
	}
}
