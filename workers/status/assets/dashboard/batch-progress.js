// @ts-check
/**
 * How far a batch has come: the share of its jobs finished one way or another, as a progress bar
 * with its counts (the batches view, and the running batches of the stats view).
 */
import { h } from "./dom.js";

/**
 * A batch as the API renders it (the Batch JSON).
 * @typedef {object} Batch
 * @property {string} id
 * @property {"planned" | "listing" | "running" | "completed" | "cancelled"} status
 * @property {string | null} [prefix]
 * @property {number | null} [key_count]
 * @property {string | null} prompt
 * @property {{ total: number, queued: number, processing: number, succeeded: number, failed: number, cancelled: number, skipped: number, missing: number }} counts
 * @property {string} created_at
 * @property {string | null} completed_at
 * @property {{ model: string, model_calls: number, minutes_at_rate_limit: number, usd: number | null } | null} [estimate]
 * @property {{ input_tokens: number, output_tokens: number, jobs_with_usage: number }} [usage]
 */
/** Jobs that are finished one way or another, out of all the batch has made so far. @param {Batch} b */
export function batchProgress(b) {
	const c = b.counts;
	const done = c.succeeded + c.failed + c.cancelled + c.skipped + c.missing;
	const percent = c.total > 0 ? Math.floor((done / c.total) * 100) : b.status === "completed" ? 100 : 0;
	return { done, total: c.total, percent };
}

/** @param {Batch} b */
export function progressCell(b) {
	const e = b.estimate;
	if (b.status === "planned" && e) {
		// A dry run's plan: what it found and what starting it would take, instead of progress.
		const c = b.counts;
		const usd = e.usd === null ? "no published price" : `$${e.usd.toFixed(4)}`;
		return h(
			"div",
			{ class: "batch-plan" },
			h(
				"div",
				{ "data-field": "plan" },
				`${c.total} objects: ${c.skipped} skipped, ${c.missing} missing, ${e.model_calls} to caption`,
			),
			h(
				"div",
				{ "data-field": "estimate" },
				`${e.model_calls} model calls, ${e.minutes_at_rate_limit} min at the rate limit, ${usd}`,
			),
			h("div", { class: "muted" }, e.model),
		);
	}
	const { done, total, percent } = batchProgress(b);
	return h(
		"div",
		{ class: "batch-progress" },
		h("progress", { max: 100, value: percent, "aria-label": `Progress of ${b.id}` }),
		h("span", { "data-field": "progress" }, `${percent} %`),
		h("span", { class: "muted" }, ` ${done} of ${total}${b.status === "listing" ? " so far" : ""}`),
	);
}
