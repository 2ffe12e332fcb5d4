// @ts-check
/**
 * Charts as inline SVG (no chart library): stacked bars and lines over time, with a y axis of
 * round ticks and time labels. Each chart is an `img` with a summary for screen readers, and its
 * figures are in a data table beside it. Colours come from the stylesheet (`.series-…`).
 */
import { clock, h, svg, tableWrap } from "./dom.js";

/**
 * @typedef {object} Series
 * @property {string} label
 * @property {string} className  `series-…`, coloured by style.css
 * @property {(number | null)[]} values
 */

/**
 * @typedef {object} ChartInput
 * @property {string} title
 * @property {string} summary  what the chart shows, in words
 * @property {string[]} times  ISO start of each point
 * @property {Series[]} series
 * @property {string} unit  y-axis unit, e.g. "jobs/min" or "ms"
 * @property {(value: number) => string} format
 */

const WIDTH = 640;
const HEIGHT = 220;
const PAD = { top: 12, right: 12, bottom: 28, left: 56 };

/** The smallest round step (1, 2 or 5 × 10^n) at or above `wanted`. @param {number} wanted */
function niceStep(wanted) {
	const magnitude = 10 ** Math.floor(Math.log10(wanted));
	return ([1, 2, 5, 10].find((m) => m * magnitude >= wanted) ?? 10) * magnitude;
}

/**
 * The y axis's ticks: 0, a round step and twice that step, the top at or above `max`. The labels
 * are `format`'s, which rounds (to whole milliseconds, to a tenth of a job per minute): a step finer
 * than that would label two ticks alike (0.5 ms and 1 ms both "1 ms"), so the step grows until the
 * three labels differ. A round step that format can show is a multiple of what it rounds to, so no
 * tick is labelled with another value either.
 * @param {number} max  the largest value drawn (0 when there is none)
 * @param {(value: number) => string} format
 * @returns {number[]}
 */
export function yTicks(max, format) {
	let step = niceStep(max > 0 ? max / 2 : 0.5);
	let ticks = [0, step, 2 * step];
	// A few rounds at most: a format that says the same of every value would never give three labels.
	for (let round = 0; round < 12 && new Set(ticks.map(format)).size < ticks.length; round++) {
		step = niceStep(step * 1.5);
		ticks = [0, step, 2 * step];
	}
	return ticks;
}

/**
 * @param {ChartInput} input
 * @param {number} max  the largest value drawn
 */
function frame(input, max) {
	const plotW = WIDTH - PAD.left - PAD.right;
	const plotH = HEIGHT - PAD.top - PAD.bottom;
	const values = yTicks(max, input.format);
	const top = values[values.length - 1] ?? 1;
	const y = (/** @type {number} */ v) => PAD.top + plotH - (v / top) * plotH;
	const ticks = values.map((v) =>
		svg(
			"g",
			{ class: "tick" },
			svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v) }),
			svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, input.format(v)),
		),
	);
	const n = input.times.length;
	const labels = [0, Math.floor((n - 1) / 2), n - 1]
		.filter((i, k, all) => all.indexOf(i) === k && input.times[i])
		.map((i) =>
			svg(
				"text",
				{
					class: "time-label",
					x: PAD.left + ((i + 0.5) / n) * plotW,
					y: HEIGHT - 8,
					"text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle",
				},
				clock(input.times[i] ?? ""),
			),
		);
	return { plotW, plotH, y, axes: [ticks, labels] };
}

/**
 * @param {ChartInput} input
 * @param {SVGElement} drawing
 */
function figure(input, drawing) {
	const id = `chart-${input.title.toLowerCase().replace(/\W+/g, "-")}`;
	drawing.setAttribute("role", "img");
	drawing.setAttribute("aria-labelledby", `${id}-title`);
	drawing.setAttribute("aria-describedby", `${id}-summary`);
	const legend = h(
		"ul",
		{ class: "legend" },
		input.series.map((s) =>
			h("li", null, h("span", { class: `swatch ${s.className}`, "aria-hidden": "true" }), s.label),
		),
	);
	const table = h(
		"table",
		{ class: "data-table" },
		h(
			"thead",
			null,
			h(
				"tr",
				null,
				h("th", { scope: "col" }, "Time"),
				input.series.map((s) => h("th", { scope: "col" }, s.label)),
			),
		),
		h(
			"tbody",
			null,
			input.times.map((t, i) =>
				h(
					"tr",
					null,
					h("th", { scope: "row" }, clock(t)),
					input.series.map((s) => {
						const v = s.values[i];
						return h("td", null, v === null || v === undefined ? "–" : input.format(v));
					}),
				),
			),
		),
	);
	return h(
		"figure",
		{ class: "chart", id },
		h("figcaption", null, h("h2", { id: `${id}-title` }, input.title), h("p", { id: `${id}-summary` }, input.summary)),
		drawing,
		legend,
		h(
			"details",
			null,
			h("summary", null, `${input.title}: the figures`),
			tableWrap(`${input.title}: the figures`, table),
		),
	);
}

/**
 * Stacked bars, one per time bucket.
 * @param {ChartInput} input
 */
export function stackedBarChart(input) {
	const totals = input.times.map((_, i) => input.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
	const { plotW, y, axes } = frame(input, Math.max(0, ...totals));
	const slot = plotW / Math.max(1, input.times.length);
	const barW = Math.max(1, slot * 0.8);
	const bars = input.times.map((_, i) => {
		let base = 0;
		return input.series.map((s) => {
			const v = s.values[i] ?? 0;
			if (v <= 0) return null;
			const rect = svg("rect", {
				class: s.className,
				x: PAD.left + i * slot + (slot - barW) / 2,
				y: y(base + v),
				width: barW,
				height: y(base) - y(base + v),
			});
			base += v;
			return rect;
		});
	});
	return figure(input, svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart-svg" }, axes, bars));
}

/**
 * Lines, one per series; a gap where a value is missing (a bucket without jobs).
 * @param {ChartInput} input
 */
export function lineChart(input) {
	const all = input.series.flatMap((s) => s.values.filter((v) => v !== null));
	const { plotW, y, axes } = frame(input, Math.max(0, .../** @type {number[]} */ (all)));
	const n = Math.max(1, input.times.length);
	const x = (/** @type {number} */ i) => PAD.left + ((i + 0.5) / n) * plotW;
	const lines = input.series.map((s) => {
		let d = "";
		let pen = false;
		/** @type {SVGElement[]} */
		const dots = [];
		s.values.forEach((v, i) => {
			if (v === null) {
				pen = false;
				return;
			}
			d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
			pen = true;
			dots.push(svg("circle", { class: s.className, cx: x(i), cy: y(v), r: 2.5 }));
		});
		return svg("g", null, svg("path", { class: `line ${s.className}`, d }), dots);
	});
	return figure(input, svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart-svg" }, axes, lines));
}
