// @ts-check
/**
 * Jobs: the live list, newest first. A job's event (the stream, live.js) puts the finished job in
 * its row, or at the top of the first page, without fetching the list again; while the stream is
 * down the current page is fetched every few seconds instead. Rows are kept by job id and only
 * changed ones are redrawn. Filters (status, prefix, batch) live
 * in the address (`#/jobs?status=failed`), pages in the view (a stack of cursors).
 */
import {
	announce,
	breakAtSlashes,
	duration,
	h,
	pager,
	redraw,
	shortModel,
	statusBadge,
	syncRows,
	tableWrap,
	timeEl,
} from "../dom.js";
import { authImage } from "../images.js";
import { outcome } from "../job-outcome.js";
import { follow, isJobEvent } from "../live.js";

/** @typedef {import("../client.js").JobStatus} JobStatus */

/** @typedef {import("../api.js").Job} Job */
/** @typedef {import("../api.js").JobList} JobList */
/** @typedef {import("../app.js").ViewContext} ViewContext */

const PAGE_SIZE = 25;
const THUMB = 64;
/** How often at most the list tells a screen reader what changed (a batch finishes many jobs a second). */
const TELL_MS = 2000;

const finished = (/** @type {string} */ status) => status !== "queued" && status !== "processing";

/**
 * What the list says to a screen reader: jobs that arrived, and jobs that finished (one by its key
 * and outcome, several as counts).
 * @param {number} arrived  new jobs not finished yet
 * @param {Job[]} done
 */
export function changesSaid(arrived, done) {
	const parts = [];
	if (arrived > 0) parts.push(`${arrived} new job${arrived === 1 ? "" : "s"}`);
	const [first] = done;
	if (done.length === 1 && first) parts.push(`${first.key}: ${first.status}`);
	else if (done.length > 1) {
		/** @type {Map<string, number>} */
		const by = new Map();
		for (const job of done) by.set(job.status, (by.get(job.status) ?? 0) + 1);
		const counts = Array.from(by, ([status, n]) => `${n} ${status}`).join(", ");
		parts.push(`${done.length} jobs finished: ${counts}`);
	}
	return parts.join(". ");
}

/**
 * Queue, inference and total time of a job, in words.
 * @param {Job} job
 */
export function timings(job) {
	const m = job.metrics;
	if (m.total_ms === null && m.queue_ms === null) return h("span", { class: "muted" }, "–");
	return h(
		"span",
		{ class: "timings" },
		`queue ${duration(m.queue_ms)} · inference ${duration(m.inference_ms)} · total ${duration(m.total_ms)}`,
	);
}

/**
 * Draws a job into its row, each cell only when what it shows changed.
 * @param {ViewContext} ctx
 * @param {HTMLTableRowElement} tr
 * @param {Job} job
 */
function fill(ctx, tr, job) {
	const [thumb, , state, result, model, times, created] = Array.from(tr.cells);
	tr.dataset.status = job.status;
	redraw(thumb, job.etag, () => authImage(ctx.api, job, { width: THUMB, alt: "", className: "thumb" }));
	redraw(state, job.status, () => statusBadge(job.status));
	redraw(result, JSON.stringify([job.status, job.caption, job.error]), () => outcome(job));
	redraw(model, job.model ?? "", () => shortModel(job.model));
	redraw(times, JSON.stringify(job.metrics), () => timings(job));
	// Relative times ("2 minutes ago") move on by themselves.
	redraw(created, `${job.created_at} ${Math.floor(Date.now() / 30_000)}`, () => timeEl(job.created_at));
}

/**
 * @param {ViewContext} ctx
 * @param {Job} job
 */
function row(ctx, job) {
	const tr = h(
		"tr",
		{ "data-job-id": job.id },
		h("td", { class: "thumb-cell" }),
		h("td", { class: "key-cell" }, h("a", { href: `#/jobs/${job.id}`, "data-field": "key" }, breakAtSlashes(job.key))),
		h("td"),
		h("td", { class: "outcome-cell" }),
		h("td"),
		h("td"),
		h("td"),
	);
	fill(ctx, tr, job);
	return tr;
}

/**
 * @param {ViewContext} ctx
 * @returns {HTMLElement}
 */
export function jobsView(ctx) {
	const filters = {
		status: ctx.params.get("status") ?? "",
		prefix: ctx.params.get("prefix") ?? "",
		batch: ctx.params.get("batch") ?? "",
	};
	let firstLoad = true;
	const pages = pager("Job pages", () => {
		firstLoad = true;
		live.refresh();
	});

	const status = h(
		"select",
		{ id: "filter-status", name: "status" },
		h("option", { value: "" }, "Any"),
		ctx.caps.statuses.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
	);
	const prefix = h("input", {
		id: "filter-prefix",
		name: "prefix",
		value: filters.prefix,
		placeholder: ctx.scope ?? "photos/",
		autocomplete: "off",
		spellcheck: "false",
	});
	const batch = h("input", {
		id: "filter-batch",
		name: "batch",
		value: filters.batch,
		placeholder: "bat_…",
		autocomplete: "off",
		spellcheck: "false",
	});

	/** @param {Event} e */
	const apply = (e) => {
		e.preventDefault();
		const query = new URLSearchParams();
		if (status.value) query.set("status", status.value);
		if (prefix.value.trim()) query.set("prefix", prefix.value.trim());
		if (batch.value.trim()) query.set("batch", batch.value.trim());
		const q = query.toString();
		ctx.navigate(`#/jobs${q ? `?${q}` : ""}`);
	};
	const form = h(
		"form",
		{ class: "filters", role: "search", "aria-label": "Filter jobs", onsubmit: apply },
		h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), status),
		h("div", { class: "field" }, h("label", { for: "filter-prefix" }, "Key prefix"), prefix),
		ctx.caps.batches ? h("div", { class: "field" }, h("label", { for: "filter-batch" }, "Batch"), batch) : null,
		h(
			"div",
			{ class: "field actions" },
			h("button", { type: "submit" }, "Apply"),
			h("button", { type: "button", class: "secondary", onclick: () => ctx.navigate("#/jobs") }, "Clear"),
		),
	);

	const tbody = h("tbody");
	const empty = h("p", { class: "empty", hidden: true });
	const updated = h("span", null, "Loading…");
	const streamNote = h("span", { class: "stream-note" });
	const note = h("p", { class: "live-note muted" }, streamNote, " ", updated);

	/** @type {Job[]} */
	let shown = [];

	// Changes seen since the list last spoke, said together at most every TELL_MS.
	let arrived = 0;
	/** @type {Map<string, Job>} */
	const done = new Map();
	/** @type {ReturnType<typeof setTimeout> | undefined} */
	let telling;
	ctx.signal.addEventListener("abort", () => clearTimeout(telling));
	/**
	 * @param {Job[]} before
	 * @param {Job[]} jobs
	 */
	function tell(before, jobs) {
		const was = new Map(before.map((j) => [j.id, j.status]));
		for (const job of jobs) {
			const old = was.get(job.id);
			if (finished(job.status) && (old === undefined || !finished(old))) done.set(job.id, job);
			else if (old === undefined) arrived++;
		}
		if (telling !== undefined || (arrived === 0 && done.size === 0)) return;
		telling = setTimeout(() => {
			telling = undefined;
			announce(changesSaid(arrived, Array.from(done.values())));
			arrived = 0;
			done.clear();
		}, TELL_MS);
	}

	/** @param {Job[]} jobs */
	function render(jobs) {
		const before = shown;
		shown = jobs;
		syncRows(
			tbody,
			jobs,
			(job) => job.id,
			(job) => {
				const tr = row(ctx, job);
				if (!firstLoad) tr.classList.add("arrived");
				return tr;
			},
			(tr, job) => fill(ctx, tr, job),
		);
		// A job that finishes in the list, or arrives, is said (not a page turned or filtered).
		if (!firstLoad && pages.first()) tell(before, jobs);
		const filtered = filters.status || filters.prefix || filters.batch;
		empty.textContent = filtered
			? "No job matches these filters."
			: "No jobs yet. Upload images on the Upload page, or put objects in the bucket.";
		empty.hidden = jobs.length > 0;
	}

	async function load() {
		const query = {
			status: /** @type {JobStatus | undefined} */ (filters.status || undefined),
			prefix: filters.prefix || undefined,
			batch_id: filters.batch || undefined,
			limit: PAGE_SIZE,
			cursor: pages.cursor() ?? undefined,
		};
		const page = await ctx.api.data(ctx.api.client.GET("/v1/jobs", { params: { query }, signal: ctx.signal }));
		render(page.data);
		firstLoad = false;
		pages.loaded(page.next_cursor);
		updated.textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
	}

	/**
	 * A job's event: its row is updated, or (on the first page, matching the filters) it is added
	 * at its place by creation time.
	 * @param {import("../live.js").LiveEvent} event
	 */
	function onEvent(event) {
		const payload = event.data;
		if (!isJobEvent(payload)) return;
		const job = payload.data;
		const at = shown.findIndex((j) => j.id === job.id);
		if (at >= 0) {
			render(shown.map((j) => (j.id === job.id ? job : j)));
			return;
		}
		const matches =
			(!filters.status || job.status === filters.status) &&
			(!filters.prefix || job.key.startsWith(filters.prefix)) &&
			(!filters.batch || job.batch_id === filters.batch);
		if (!matches || !pages.first()) return;
		const jobs = [...shown, job].sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id.localeCompare(a.id));
		render(jobs.slice(0, PAGE_SIZE));
		updated.textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
	}

	const live = follow(ctx, 2000, load, onEvent, ctx.onError, streamNote);

	return h(
		"section",
		{ class: "view jobs-view", "aria-labelledby": "view-title" },
		h("h1", { id: "view-title", tabindex: "-1" }, "Jobs"),
		form,
		note,
		tableWrap(
			"Jobs, newest first",
			h(
				"table",
				{ class: "jobs-table" },
				h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
				h(
					"thead",
					null,
					h(
						"tr",
						null,
						["Image", "Key", "Status", "Caption or error", "Model", "Timings", "Created"].map((t) =>
							h("th", { scope: "col" }, t),
						),
					),
				),
				tbody,
			),
		),
		empty,
		pages.element,
	);
}
