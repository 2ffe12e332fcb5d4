// @ts-check
/**
 * Stats (`#/stats`): jobs by status, throughput over time and inference-time percentiles over
 * time (from `GET /v1/stats/series`), the 5-minute / 1-hour / 1-day windows of `GET /v1/stats`,
 * the scheduler's lanes per rate limit, and, where the API reports them, the progress of running batches. Refreshed every few seconds.
 */

import { progressCell } from "../batch-progress.js";
import { lineChart, stackedBarChart } from "../charts.js";
import { duration, h, replace, tableWrap } from "../dom.js";
import { follow, throttle } from "../live.js";

/** @typedef {NonNullable<import("../client.js").paths["/v1/stats/series"]["get"]["parameters"]["query"]>["window"]} StatsWindow */

/** @typedef {import("../api.js").Stats} Stats */
/** @typedef {import("../api.js").StatsSeries} StatsSeries */
/** @typedef {import("../app.js").ViewContext} ViewContext */
/** @typedef {import("../batch-progress.js").Batch} Batch */

const WINDOWS = [
	{ value: "15m", label: "Last 15 minutes" },
	{ value: "1h", label: "Last hour" },
	{ value: "24h", label: "Last 24 hours" },
];

/** 30 → "30 seconds", 60 → "minute", 900 → "15 minutes". @param {number} seconds */
const bucketName = (seconds) =>
	seconds < 60 ? `${seconds} seconds` : seconds === 60 ? "minute" : `${Math.round(seconds / 60)} minutes`;

/** @param {number} v */
const perMinute = (v) => (v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1));

/** @param {Stats} stats */
function countCards(stats) {
	return h(
		"ul",
		{ class: "cards", "aria-label": "Jobs by status" },
		Object.entries(stats.counts).map(([status, n]) =>
			h(
				"li",
				{ class: `card card-${status}` },
				h("span", { class: "card-value", "data-count": status }, n.toLocaleString()),
				h("span", { class: "card-label" }, status),
			),
		),
	);
}

/** @param {StatsSeries} series */
function charts(series) {
	const minutes = series.bucket_seconds / 60;
	const times = series.points.map((p) => p.start);
	const completed = series.points.reduce((sum, p) => sum + p.completed, 0);
	const peak = Math.max(0, ...series.points.map((p) => p.completed / minutes));
	const window = WINDOWS.find((w) => w.value === series.window)?.label.toLowerCase() ?? series.window;
	const p95s = series.points.map((p) => p.inference_ms.p95).filter((v) => v !== null);
	return [
		stackedBarChart({
			title: "Throughput",
			summary: `${completed} jobs finished over the ${window}; at most ${perMinute(peak)} per minute.`,
			times,
			unit: "jobs/min",
			format: (v) => `${perMinute(v)}/min`,
			series: [
				{ label: "succeeded", className: "series-succeeded", values: series.points.map((p) => p.succeeded / minutes) },
				{ label: "failed", className: "series-failed", values: series.points.map((p) => p.failed / minutes) },
				{
					label: "other (cancelled)",
					className: "series-other",
					values: series.points.map((p) => (p.completed - p.succeeded - p.failed) / minutes),
				},
			],
		}),
		lineChart({
			title: "Inference time",
			summary: p95s.length
				? `p50, p95 and p99 of inference time per ${bucketName(series.bucket_seconds)}; p95 was at most ${duration(Math.max(.../** @type {number[]} */ (p95s)))}.`
				: `No job was captioned over the ${window}.`,
			times,
			unit: "ms",
			format: (v) => duration(v),
			series: [
				{ label: "p50", className: "series-p50", values: series.points.map((p) => p.inference_ms.p50) },
				{ label: "p95", className: "series-p95", values: series.points.map((p) => p.inference_ms.p95) },
				{ label: "p99", className: "series-p99", values: series.points.map((p) => p.inference_ms.p99) },
			],
		}),
	];
}

/** @param {Stats} stats */
function windowsTable(stats) {
	return tableWrap(
		"Recent windows",
		h(
			"table",
			{ class: "windows-table" },
			h("caption", null, "Recent windows"),
			h(
				"thead",
				null,
				h(
					"tr",
					null,
					["Window", "Finished", "Succeeded", "Failed", "Per minute", "p50", "p95", "p99"].map((t) =>
						h("th", { scope: "col" }, t),
					),
				),
			),
			h(
				"tbody",
				null,
				stats.windows.map((w) =>
					h(
						"tr",
						null,
						h("th", { scope: "row" }, w.window),
						h("td", null, String(w.completed)),
						h("td", null, String(w.succeeded)),
						h("td", null, String(w.failed)),
						h("td", null, perMinute(w.throughput_per_minute)),
						h("td", null, duration(w.inference_ms.p50)),
						h("td", null, duration(w.inference_ms.p95)),
						h("td", null, duration(w.inference_ms.p99)),
					),
				),
			),
		),
	);
}

/** 0.237 → "24 %". @param {number} share */
const percent = (share) => `${Math.round(share * 100)} %`;

/**
 * The scheduler's lanes per rate limit (`lanes` in `GET /v1/stats`; null for scoped keys): jobs
 * waiting for a model slot, the oldest one's age, and the share of the limit used in the last minute.
 * @param {Stats} stats
 */
function lanesTable(stats) {
	const lanes = stats.lanes;
	if (!Array.isArray(lanes)) return null;
	return tableWrap(
		"Lanes",
		h(
			"table",
			{ class: "lanes-table" },
			h("caption", null, "Lanes: interactive work first, batches at least their share"),
			h(
				"thead",
				null,
				h(
					"tr",
					null,
					["Lane", "Rate limit", "Waiting", "Oldest waiting", "Calls last minute", "Share of the limit"].map((t) =>
						h("th", { scope: "col" }, t),
					),
				),
			),
			h(
				"tbody",
				null,
				lanes.length === 0
					? h("tr", null, h("td", { colspan: "6", class: "empty" }, "No model call paced yet."))
					: lanes.map((l) =>
							h(
								"tr",
								{ "data-lane": `${l.lane}/${l.task_type}` },
								h("th", { scope: "row" }, l.lane),
								h("td", null, l.task_type),
								h("td", { "data-field": "waiting" }, String(l.waiting)),
								h(
									"td",
									{ "data-field": "oldest" },
									l.oldest_waiting_seconds === null ? "—" : duration(l.oldest_waiting_seconds * 1000),
								),
								h("td", { "data-field": "calls" }, String(l.calls_last_minute)),
								h(
									"td",
									{ "data-field": "share" },
									h("meter", { min: "0", max: "1", value: String(l.share_last_minute) }),
									` ${percent(l.share_last_minute)}`,
								),
							),
						),
			),
		),
	);
}

/**
 * Running batches, when the stats carry them (`batches` in `GET /v1/stats`).
 * @param {Stats} stats
 */
function batches(stats) {
	const running = /** @type {{ batches?: Batch[] }} */ (stats).batches;
	if (!Array.isArray(running)) return null;
	return h(
		"section",
		{ class: "panel", "aria-labelledby": "running-batches" },
		h("h2", { id: "running-batches" }, "Running batches"),
		running.length === 0
			? h("p", { class: "empty" }, "None.")
			: h(
					"ul",
					{ class: "batch-bars" },
					running.map((b) => h("li", null, h("a", { href: "#/batches" }, h("code", null, b.id)), progressCell(b))),
				),
	);
}

/**
 * @param {ViewContext} ctx
 * @returns {HTMLElement}
 */
export function statsView(ctx) {
	const choice = h(
		"select",
		{ id: "stats-window" },
		WINDOWS.map((w) => h("option", { value: w.value, selected: w.value === "1h" }, w.label)),
	);
	const cards = h("div", null, h("p", { class: "muted" }, "Loading…"));
	const chartBox = h("div", { class: "charts" });
	const tables = h("div");
	const lanes = h("div");
	const running = h("div");

	async function load() {
		const [stats, series] = await Promise.all([
			ctx.api.data(ctx.api.client.GET("/v1/stats", { signal: ctx.signal })),
			ctx.api.data(
				ctx.api.client.GET("/v1/stats/series", {
					params: { query: { window: /** @type {StatsWindow} */ (choice.value) } },
					signal: ctx.signal,
				}),
			),
		]);
		// Keep an open "figures" table open across refreshes.
		const open = Array.from(chartBox.querySelectorAll("details[open]"), (d) => d.parentElement?.id);
		replace(cards, countCards(stats));
		replace(chartBox, charts(series));
		for (const id of open) chartBox.querySelector(`#${id} details`)?.setAttribute("open", "");
		replace(tables, windowsTable(stats));
		replace(lanes, lanesTable(stats));
		replace(running, batches(stats));
	}

	const streamNote = h("p", { class: "live-note muted" });
	// Any event changes the figures: read again, at most every 5 s.
	const again = throttle(() => live.refresh(), 5000);
	const live = follow(ctx, 5000, load, again, ctx.onError, streamNote);
	choice.addEventListener("change", () => live.refresh());

	return h(
		"section",
		{ class: "view stats-view", "aria-labelledby": "view-title" },
		h("h1", { id: "view-title", tabindex: "-1" }, "Stats"),
		streamNote,
		ctx.scope ? h("p", { class: "muted" }, "Limited to the objects under ", h("code", null, ctx.scope), ".") : null,
		cards,
		h(
			"div",
			{ class: "filters" },
			h("div", { class: "field" }, h("label", { for: "stats-window" }, "Charts over"), choice),
		),
		chartBox,
		tables,
		lanes,
		running,
	);
}
