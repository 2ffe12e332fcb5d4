/**
 * The output choices of the upload and batch forms (output kind, language, write-back) and the
 * structured result of a job page: a list of tags, a JSON record, or the text (docs/outputs.md).
 */
import { field, h } from "./dom.js";

/** @typedef {import("./api.js").Job} Job */

const KINDS = [
	["caption", "Caption"],
	["alt_text", "Alt text (at most 125 characters)"],
	["tags", "Tags (1-20)"],
	["title", "Title (at most 80 characters)"],
];
const WRITE_BACKS = [
	["", "Keep the result in the service only"],
	["sidecar", "Sidecar file next to the image (.txt)"],
	["metadata", "The image's own metadata (caption)"],
];

/**
 * @param {string} id
 * @param {string[][]} options
 */
function select(id, options) {
	return /** @type {HTMLSelectElement} */ (
		h("select", { id, name: id }, ...options.map(([value, label]) => h("option", { value }, label)))
	);
}

/**
 * The three controls under `idPrefix` and what they say.
 * @param {string} idPrefix
 */
export function outputFields(idPrefix) {
	const output = select(`${idPrefix}-output`, KINDS);
	const language = /** @type {HTMLInputElement} */ (
		h("input", { id: `${idPrefix}-language`, name: "language", maxlength: 35, placeholder: "e.g. de, pt-BR" })
	);
	const writeBack = select(`${idPrefix}-write-back`, WRITE_BACKS);
	return {
		elements: [
			field("Output", output),
			field("Language (optional)", language, "A BCP 47 tag; models that cannot write it are skipped."),
			field("Write back", writeBack),
		],
		/** The choices as API body fields (only those that differ from the defaults). */
		body() {
			/** @type {{ output?: "caption" | "alt_text" | "tags" | "title", language?: string, write_back?: "sidecar" | "metadata" }} */
			const body = {};
			if (output.value !== "caption") body.output = /** @type {"alt_text" | "tags" | "title"} */ (output.value);
			if (language.value.trim()) body.language = language.value.trim();
			if (writeBack.value) body.write_back = /** @type {"sidecar" | "metadata"} */ (writeBack.value);
			return body;
		},
		/** The same choices as upload headers. */
		headers() {
			const b = this.body();
			/** @type {Record<string, string>} */
			const headers = {};
			if (b.output) headers["X-Caption-Output"] = b.output;
			if (b.language) headers["X-Caption-Language"] = b.language;
			if (b.write_back) headers["X-Caption-Write-Back"] = b.write_back;
			return headers;
		},
	};
}

/**
 * The job's result as its kind shows it best; null before it has one.
 * @param {Job} job
 */
export function resultBlock(job) {
	const result = job.result;
	if (result === null || result === undefined || job.output === "caption") return null;
	/** @type {HTMLElement} */
	let shown;
	if (job.output === "tags" && Array.isArray(result)) {
		shown = h("ul", { class: "tags", "data-field": "result" }, ...result.map((t) => h("li", null, String(t))));
	} else if (job.output === "json_schema") {
		shown = h("pre", { class: "result-json", "data-field": "result" }, JSON.stringify(result, null, 2));
	} else {
		shown = h("p", { class: "caption-full", "data-field": "result" }, String(result));
	}
	const wb = job.write_back;
	return [
		h("h2", null, `Result: ${job.output.replace("_", " ")}${job.language ? ` (${job.language})` : ""}`),
		shown,
		wb
			? h(
					"p",
					{ class: "muted", "data-field": "write-back" },
					`Written back to ${wb.target}: ${wb.status}${wb.error ? ` (${wb.error})` : ""}`,
				)
			: null,
	];
}
