// @ts-check
/**
 * One job (`#/jobs/{id}`): the image, its caption or error, the details and timings, and the
 * webhook deliveries of its event with their attempts (a delivery to a subscription can be sent
 * again from here). Refreshed every few seconds, so a running job finishes before your eyes.
 */

import { messageOf, saveBlob } from "../api.js";
import { captionHistory } from "../caption-history.js";
import { deliveryTable } from "../deliveries.js";
import {
	announce,
	breakAtSlashes,
	byteSize,
	duration,
	errorBox,
	fullTime,
	h,
	replace,
	shortModel,
	showError,
	statusBadge,
} from "../dom.js";
import { authImage } from "../images.js";
import { follow, isJobEvent } from "../live.js";
import { resultBlock } from "../output-fields.js";

/** @typedef {import("../api.js").Job} Job */
/** @typedef {import("../api.js").JobWebhookDeliveryList} JobWebhookDeliveryList */
/** @typedef {import("../app.js").ViewContext} ViewContext */

const PREVIEW = 640;

/**
 * @param {[string, import("../dom.js").Child][]} pairs
 */
const details = (pairs) =>
	h(
		"dl",
		{ class: "details" },
		pairs.map(([term, value]) => [h("dt", null, term), h("dd", null, value ?? h("span", { class: "muted" }, "–"))]),
	);

/**
 * Queue wait, inference and the rest of the job's time as one bar.
 * @param {Job} job
 */
function timingBar(job) {
	const { queue_ms: queue, inference_ms: inference, total_ms: total } = job.metrics;
	if (total === null || total <= 0) return null;
	const parts = [
		{ label: "queue", ms: queue ?? 0, className: "series-queue" },
		{ label: "inference", ms: inference ?? 0, className: "series-inference" },
		{ label: "other", ms: Math.max(0, total - (queue ?? 0) - (inference ?? 0)), className: "series-other" },
	];
	const bar = h("div", { class: "timing-bar", "aria-hidden": "true" });
	for (const part of parts) {
		const span = h("span", { class: part.className });
		span.style.width = `${(part.ms / total) * 100}%`;
		bar.append(span);
	}
	return h(
		"figure",
		{ class: "timing" },
		bar,
		h(
			"figcaption",
			{ class: "legend" },
			parts.map((p) => h("span", null, h("span", { class: `swatch ${p.className}` }), ` ${p.label} ${duration(p.ms)}`)),
		),
	);
}

/**
 * @param {Job} job
 */
function summary(job) {
	const outcomeBlock = job.caption
		? [h("h2", null, "Caption"), h("p", { class: "caption-full", "data-field": "caption" }, job.caption)]
		: job.error
			? [
					h("h2", null, "Error"),
					h(
						"p",
						{ class: "job-error", "data-field": "error" },
						h("code", null, job.error.code),
						" ",
						job.error.message,
					),
				]
			: [
					h("h2", null, "Caption"),
					h("p", { class: "muted" }, job.status === "queued" ? "Waiting for the model…" : "Captioning…"),
				];
	const batchId = /** @type {{ batch_id?: string | null }} */ (job).batch_id;
	return [
		resultBlock(job),
		h("p", { class: "job-status" }, statusBadge(job.status), job.attempts > 1 ? ` after ${job.attempts} attempts` : ""),
		outcomeBlock,
		h("h2", null, "Timings"),
		timingBar(job),
		details([
			["Created", fullTime(job.created_at)],
			["Started", job.started_at ? fullTime(job.started_at) : null],
			["Completed", job.completed_at ? fullTime(job.completed_at) : null],
			["Queue wait", duration(job.metrics.queue_ms)],
			["Inference", duration(job.metrics.inference_ms)],
			["Total", duration(job.metrics.total_ms)],
		]),
		h("h2", null, "Details"),
		details([
			["Key", h("code", null, breakAtSlashes(job.key))],
			["Model", shortModel(job.model)],
			["Prompt", job.prompt],
			["Max tokens", job.max_tokens === null ? null : String(job.max_tokens)],
			["Attempts", String(job.attempts)],
			// Summed over every call made for the job; none when its models report no tokens.
			["Tokens", job.usage ? `${job.usage.input_tokens} input, ${job.usage.output_tokens} output` : null],
			["Size", byteSize(job.size)],
			["Type", job.content_type],
			["ETag", h("code", null, job.etag)],
			["Batch", batchId ? h("a", { href: `#/jobs?batch=${encodeURIComponent(batchId)}` }, batchId) : null],
		]),
	];
}

/**
 * @param {ViewContext} ctx
 * @param {string} id
 * @returns {HTMLElement}
 */
export function jobView(ctx, id) {
	const title = h("h1", { id: "view-title", tabindex: "-1" }, "Job ", h("code", null, id));
	const figure = h("figure", { class: "job-image" });
	const info = h("div", { class: "job-info" });
	const noDeliveries = h("p", { class: "empty" }, "Loading…");
	const deliveries = deliveryTable(ctx, {
		caption: "Webhook deliveries of this job",
		context: "target",
		refresh: () => live.refresh(),
	});
	const problem = errorBox("job-problem");
	const captions = h("div");
	/** @type {Job | null} */
	let shown = null;

	async function download() {
		if (!shown) return;
		try {
			const { blob, filename } = await ctx.api.file(
				ctx.api.client.GET("/v1/images/{key}", { params: { path: { key: shown.key } }, parseAs: "blob" }),
			);
			saveBlob(blob, filename ?? shown.key.split("/").pop() ?? "image");
		} catch (err) {
			showError(problem, `The image could not be downloaded: ${messageOf(err)}`);
		}
	}

	async function load() {
		const [job, list] = await Promise.all([
			ctx.api.data(ctx.api.client.GET("/v1/jobs/{id}", { params: { path: { id } }, signal: ctx.signal })),
			ctx.api.data(ctx.api.client.GET("/v1/jobs/{id}/deliveries", { params: { path: { id } }, signal: ctx.signal })),
		]);
		showError(problem, null);
		if (!shown || shown.etag !== job.etag) {
			replace(
				figure,
				authImage(ctx.api, job, { width: PREVIEW, alt: `The image ${job.key}`, className: "preview" }),
				h(
					"figcaption",
					null,
					h("code", null, breakAtSlashes(job.key)),
					" ",
					h("button", { type: "button", class: "secondary small", onclick: download }, "Download original"),
				),
			);
		}
		// The object's caption history: once the job is shown, and again when it has just finished.
		if (!shown || (shown.status !== job.status && job.status === "succeeded")) {
			const panel = captionHistory(ctx, job.key);
			replace(captions, panel.element);
			await panel.load();
		}
		if (shown && shown.status !== job.status) announce(`Job ${job.status}`);
		if (!shown || JSON.stringify(shown) !== JSON.stringify(job)) replace(info, summary(job));
		shown = job;
		deliveries.update(list.data);
		noDeliveries.textContent = "No deliveries: the job is not finished, or no webhook matches it.";
		noDeliveries.hidden = list.data.length > 0;
		// A write-back ends after the job's last event, so no event says it ended: look again until it has.
		clearTimeout(writeBackCheck);
		if (job.write_back?.status === "pending" && !ctx.signal.aborted) {
			writeBackCheck = setTimeout(() => live.refresh(), 2000);
		}
	}
	/** @type {ReturnType<typeof setTimeout> | undefined} */
	let writeBackCheck;
	ctx.signal.addEventListener("abort", () => clearTimeout(writeBackCheck));

	const streamNote = h("p", { class: "live-note muted" });
	/** @param {import("../live.js").LiveEvent} event  this job's event: read it (and its deliveries) again */
	const onEvent = (event) => {
		const payload = event.data;
		if (isJobEvent(payload) && payload.data.id === id) live.refresh();
	};
	const live = follow(
		ctx,
		2000,
		load,
		onEvent,
		(err) => {
			const gone = err instanceof Error && "status" in err && err.status === 404;
			showError(problem, gone ? `There is no job ${id} (or it is outside your key's prefix).` : messageOf(err));
		},
		streamNote,
	);

	return h(
		"section",
		{ class: "view job-view", "aria-labelledby": "view-title" },
		h("p", null, h("a", { href: "#/jobs" }, "← All jobs")),
		title,
		streamNote,
		problem,
		h("div", { class: "job-layout" }, figure, info),
		captions,
		h("h2", null, "Webhook deliveries"),
		noDeliveries,
		deliveries.element,
	);
}
