// @ts-check
/**
 * What became of a job, in one line: its caption, its error code and message, or where it is
 * (the jobs list and the upload view).
 */
import { h } from "./dom.js";

/** @typedef {import("./api.js").Job} Job */

/** @param {Job} job */
export function outcome(job) {
	if (job.caption) return h("span", { class: "caption", "data-field": "caption" }, job.caption);
	if (job.error)
		return h(
			"span",
			{ class: "job-error", "data-field": "error" },
			h("code", null, job.error.code),
			" ",
			job.error.message,
		);
	return h("span", { class: "muted" }, job.status === "queued" ? "waiting for the model" : "captioning…");
}
