// @ts-check
/**
 * Batches (`#/batches`): every batch the token sees with a progress bar and its counts, live; a
 * form that captions a whole prefix; cancel; and the exports (JSON Lines, CSV, and the Hugging
 * Face `metadata.jsonl`) downloaded with the token. Built on the batches API (docs/batches.md); a
 * server whose OpenAPI document has no `/v1/batches` gets a note instead.
 */

import { messageOf, saveBlob } from "../api.js";
import { progressCell } from "../batch-progress.js";
import {
	actionsHeader,
	announce,
	breakAtSlashes,
	errorBox,
	field,
	h,
	pager,
	redraw,
	showError,
	statusBadge,
	syncRows,
	tableWrap,
	timeEl,
} from "../dom.js";
import { follow, isJobEvent, throttle } from "../live.js";
import { outputFields } from "../output-fields.js";

/** @typedef {import("../client.js").BatchStatus} BatchStatus */

/** @typedef {import("../app.js").ViewContext} ViewContext */

/** @typedef {import("../batch-progress.js").Batch} Batch */
/** @typedef {{ data: Batch[], next_cursor: string | null }} BatchList */

const STATUSES = ["planned", "listing", "running", "completed", "cancelled"];
/** @type {{ format: import("../client.js").ExportFormat, label: string, file: (id: string) => string }[]} */
const EXPORTS = [
	{ format: "jsonl", label: "JSONL", file: (/** @type {string} */ id) => `${id}.jsonl` },
	{ format: "csv", label: "CSV", file: (/** @type {string} */ id) => `${id}.csv` },
	{ format: "hf", label: "HF metadata", file: () => "metadata.jsonl" },
];

/** @param {Batch} b  its counts, and the tokens its jobs reported (docs/batches.md#usage-and-the-estimate) */
const counts = (b) =>
	h(
		"ul",
		{ class: "counts" },
		Object.entries(b.counts)
			.filter(([name, n]) => name !== "total" && n > 0)
			.map(([name, n]) => h("li", { class: `count count-${name}` }, `${n} ${name}`)),
		b.usage && b.usage.jobs_with_usage > 0
			? h(
					"li",
					{ class: "count count-usage", "data-field": "usage" },
					`${b.usage.input_tokens} input, ${b.usage.output_tokens} output tokens`,
				)
			: null,
	);

/**
 * @param {ViewContext} ctx
 * @param {() => void} refresh
 */
function createForm(ctx, refresh) {
	const prefix = h("input", {
		id: "batch-prefix",
		name: "prefix",
		required: true,
		value: ctx.scope ?? "",
		spellcheck: "false",
		autocomplete: "off",
	});
	const prompt = h("input", { id: "batch-prompt", name: "prompt", maxlength: 2000 });
	const outputs = outputFields("batch");
	const skip = h("input", { id: "batch-skip", name: "skip_captioned", type: "checkbox", checked: true });
	const dryRun = h("input", { id: "batch-dry-run", name: "dry_run", type: "checkbox" });
	const problem = errorBox("batch-error");
	const form = h(
		"form",
		{ class: "panel", "aria-labelledby": "new-batch-title", novalidate: true },
		h("h2", { id: "new-batch-title" }, "Caption a prefix"),
		field("Key prefix", prefix, "Every object under this prefix gets a job, including those already in the bucket."),
		field("Prompt (optional)", prompt),
		...outputs.elements,
		h(
			"div",
			{ class: "field check" },
			skip,
			h("label", { for: "batch-skip" }, "Skip objects already captioned with this prompt"),
		),
		h(
			"div",
			{ class: "field check" },
			dryRun,
			h("label", { for: "batch-dry-run" }, "Plan only (dry run): count and estimate, then Start"),
		),
		problem,
		h("button", { type: "submit" }, "Create batch"),
	);
	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		if (!prefix.value.trim()) {
			showError(problem, "Enter the prefix to caption.");
			prefix.focus();
			return;
		}
		try {
			const batch = await ctx.api.data(
				ctx.api.client.POST("/v1/batches", {
					body: {
						prefix: prefix.value.trim(),
						...(prompt.value.trim() ? { prompt: prompt.value.trim() } : {}),
						skip_captioned: skip.checked,
						...outputs.body(),
						dry_run: dryRun.checked,
					},
				}),
			);
			showError(problem, null);
			announce(dryRun.checked ? `Batch ${batch.id} is being planned` : `Batch ${batch.id} created`);
			refresh();
		} catch (err) {
			showError(problem, messageOf(err));
		}
	});
	return form;
}

/**
 * @param {ViewContext} ctx
 * @param {Batch} b
 * @param {() => void} refresh
 */
function actions(ctx, b, refresh) {
	/** @param {typeof EXPORTS[number]} x */
	const download = async (x) => {
		try {
			const { blob, filename } = await ctx.api.file(
				ctx.api.client.GET("/v1/batches/{id}/results", {
					params: { path: { id: b.id }, query: { format: x.format } },
					parseAs: "blob",
				}),
			);
			saveBlob(blob, filename ?? x.file(b.id));
		} catch (err) {
			ctx.onError(err);
		}
	};
	const cancel = async () => {
		if (!window.confirm(`Cancel ${b.id}? Its queued jobs will not be captioned.`)) return;
		try {
			await ctx.api.data(ctx.api.client.POST("/v1/batches/{id}/cancel", { params: { path: { id: b.id } } }));
			announce(`Batch ${b.id} cancelled`);
		} catch (err) {
			ctx.onError(err);
		}
		refresh();
	};
	const start = async () => {
		try {
			await ctx.api.data(ctx.api.client.POST("/v1/batches/{id}/start", { params: { path: { id: b.id } } }));
			announce(`Batch ${b.id} started`);
		} catch (err) {
			ctx.onError(err);
		}
		refresh();
	};
	const open = b.status === "planned" || b.status === "listing" || b.status === "running";
	return h(
		"div",
		{ class: "actions" },
		h(
			"a",
			{
				href: `#/jobs?batch=${encodeURIComponent(b.id)}`,
				class: "button secondary small",
				"aria-label": `Jobs of ${b.id}`,
			},
			"Jobs",
		),
		b.status === "planned"
			? h("button", { type: "button", class: "small", onclick: start, "aria-label": `Start ${b.id}` }, "Start")
			: null,
		open
			? h(
					"button",
					{ type: "button", class: "danger small", onclick: cancel, "aria-label": `Cancel ${b.id}` },
					"Cancel",
				)
			: null,
		h(
			"span",
			{ class: "exports", role: "group", "aria-label": `Exports of ${b.id}` },
			EXPORTS.map((x) =>
				h(
					"button",
					{
						type: "button",
						class: "secondary small",
						onclick: () => download(x),
						"aria-label": `Download ${x.label} of ${b.id}`,
					},
					x.label,
				),
			),
		),
	);
}

/**
 * @param {ViewContext} ctx
 * @returns {HTMLElement}
 */
export function batchesView(ctx) {
	const title = h("h1", { id: "view-title", tabindex: "-1" }, "Batches");
	if (!ctx.caps.batches) {
		return h(
			"section",
			{ class: "view", "aria-labelledby": "view-title" },
			title,
			h("p", { class: "empty" }, "This server's API has no batches (its OpenAPI document lists no /v1/batches)."),
		);
	}
	const filter = h(
		"select",
		{ id: "batch-status" },
		h("option", { value: "" }, "Any"),
		STATUSES.map((s) => h("option", { value: s }, s)),
	);
	const pages = pager("Batch pages", () => live.refresh());
	const tbody = h("tbody");
	const table = tableWrap(
		"Batches, newest first",
		h(
			"table",
			{ class: "batches-table" },
			h("caption", { class: "visually-hidden" }, "Batches, newest first"),
			h(
				"thead",
				null,
				h(
					"tr",
					null,
					["Batch", "Status", "Objects", "Progress", "Counts", "Created"].map((t) => h("th", { scope: "col" }, t)),
					actionsHeader(),
				),
			),
			tbody,
		),
		{ hidden: true },
	);
	const empty = h("p", { class: "empty" }, "Loading…");
	const problem = errorBox("batches-problem");

	/**
	 * @param {HTMLTableRowElement} tr
	 * @param {Batch} b
	 */
	function fill(tr, b) {
		const [, state, objects, progress, tally, created, buttons] = Array.from(tr.cells);
		// A batch that ends while shown is said; its progress bar can be read at any time.
		const was = tr.dataset.status;
		if (was && was !== b.status && (b.status === "completed" || b.status === "cancelled")) {
			announce(`Batch ${b.id} ${b.status}`);
		}
		tr.dataset.status = b.status;
		redraw(state, b.status, () => statusBadge(b.status));
		redraw(objects, `${b.prefix} ${b.key_count}`, () =>
			b.prefix ? h("code", null, breakAtSlashes(b.prefix)) : `${b.key_count ?? 0} keys`,
		);
		redraw(progress, JSON.stringify([b.status, b.counts, b.estimate]), () => progressCell(b));
		redraw(tally, JSON.stringify([b.counts, b.usage]), () => counts(b));
		redraw(created, `${b.created_at} ${Math.floor(Date.now() / 30_000)}`, () => timeEl(b.created_at));
		redraw(buttons, b.status, () => actions(ctx, b, () => live.refresh()));
	}

	/** @param {Batch} b */
	function row(b) {
		const tr = h(
			"tr",
			{ "data-batch-id": b.id },
			h("td", null, h("code", null, b.id), b.prompt ? h("div", { class: "muted" }, b.prompt) : null),
			h("td"),
			h("td"),
			h("td"),
			h("td"),
			h("td"),
			h("td"),
		);
		fill(tr, b);
		return tr;
	}

	async function load() {
		const status = /** @type {BatchStatus | undefined} */ (filter.value || undefined);
		const page = await ctx.api.data(
			ctx.api.client.GET("/v1/batches", {
				params: { query: { status, limit: 20, cursor: pages.cursor() ?? undefined } },
				signal: ctx.signal,
			}),
		);
		showError(problem, null);
		pages.loaded(page.next_cursor);
		syncRows(tbody, page.data, (b) => b.id, row, fill);
		table.hidden = page.data.length === 0;
		empty.hidden = page.data.length > 0;
		empty.textContent = filter.value ? `No ${filter.value} batches.` : "No batches yet.";
	}

	const streamNote = h("p", { class: "live-note muted" });
	// A batch's event, or one of its jobs': the list is read again, at most once a second.
	const again = throttle(() => live.refresh(), 1000);
	/** @param {import("../live.js").LiveEvent} event */
	const onEvent = (event) => {
		const payload = event.data;
		if (payload.type.startsWith("batch.")) again();
		else if (isJobEvent(payload) && payload.data.batch_id) again();
	};
	const live = follow(ctx, 2000, load, onEvent, (err) => showError(problem, messageOf(err)), streamNote);
	filter.addEventListener("change", () => {
		pages.reset();
		live.refresh();
	});

	return h(
		"section",
		{ class: "view batches-view", "aria-labelledby": "view-title" },
		title,
		streamNote,
		createForm(ctx, () => live.refresh()),
		h(
			"section",
			{ class: "panel", "aria-labelledby": "batch-list-title" },
			h("h2", { id: "batch-list-title" }, "All batches"),
			h(
				"div",
				{ class: "filters" },
				h("div", { class: "field" }, h("label", { for: "batch-status" }, "Status"), filter),
			),
			problem,
			empty,
			table,
			pages.element,
		),
	);
}
