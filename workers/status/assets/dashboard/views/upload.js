// @ts-check
/**
 * Upload (`#/upload`): images dropped on the page or chosen with the file picker go to
 * `PUT /v1/images/{prefix}{file name}` with the prompt, a few at a time, each with its own
 * progress bar (XMLHttpRequest upload events); then each file's job is followed live until it
 * has its caption. The uploads belong to the tab, not the view: leaving the page and coming back
 * shows them where they are.
 */

import { messageOf } from "../api.js";
import { announce, breakAtSlashes, field, h, replace, statusBadge } from "../dom.js";
import { outcome } from "../job-outcome.js";
import { outputFields } from "../output-fields.js";

/** @typedef {import("../api.js").Api} Api */
/** @typedef {import("../api.js").Job} Job */
/** @typedef {import("../app.js").ViewContext} ViewContext */

/**
 * @typedef {object} Upload
 * @property {number} n
 * @property {File} file
 * @property {string} key
 * @property {string} prompt
 * @property {Record<string, string>} headers the output choices as upload headers
 * @property {number | null} maxTokens
 * @property {"waiting" | "uploading" | "uploaded" | "failed"} state
 * @property {number} loaded
 * @property {string | null} error
 * @property {Job | null} job
 */

const PARALLEL = 3;
const FOLLOW_MS = 1500;

/** The tab's uploads, and who to tell when one changes. */
const store = {
	/** @type {Upload[]} */
	items: [],
	/** @type {Set<(item: Upload) => void>} */
	listeners: new Set(),
	/** @type {AbortController} */
	stop: new AbortController(),
	/** @type {Api | null} */
	api: null,
	running: 0,
	following: false,
	count: 0,
};

/** @param {Upload} item */
function changed(item) {
	for (const listener of store.listeners) listener(item);
}

const terminal = (/** @type {string} */ status) => status !== "queued" && status !== "processing";

/** Follows the uploaded files' jobs until each is finished. */
async function follow() {
	if (store.following) return;
	store.following = true;
	const { signal } = store.stop;
	while (!signal.aborted) {
		const open = store.items.filter((i) => i.job && !terminal(i.job.status));
		const pending = store.items.some((i) => i.state === "waiting" || i.state === "uploading");
		if (open.length === 0 && !pending) break;
		await new Promise((r) => setTimeout(r, FOLLOW_MS));
		for (const item of open.slice(0, 20)) {
			if (signal.aborted || !store.api || !item.job) break;
			try {
				const id = item.job.id;
				item.job = await store.api.data(store.api.client.GET("/v1/jobs/{id}", { params: { path: { id } }, signal }));
				changed(item);
				if (terminal(item.job.status)) announce(`${item.file.name}: ${item.job.status}`);
			} catch {
				// Tried again on the next round.
			}
		}
	}
	store.following = false;
}

function pump() {
	const { signal } = store.stop;
	while (store.running < PARALLEL && store.api && !signal.aborted) {
		const item = store.items.find((i) => i.state === "waiting");
		if (!item) return;
		const api = store.api;
		store.running++;
		item.state = "uploading";
		changed(item);
		api
			.upload(item.key, item.file, {
				prompt: item.prompt || undefined,
				maxTokens: item.maxTokens ?? undefined,
				headers: item.headers,
				signal,
				onProgress: (loaded) => {
					item.loaded = loaded;
					changed(item);
				},
			})
			.then(
				(job) => {
					item.state = "uploaded";
					item.loaded = item.file.size;
					item.job = job;
				},
				(err) => {
					item.state = "failed";
					item.error = messageOf(err);
					announce(`${item.file.name} was not uploaded: ${item.error}`);
				},
			)
			.finally(() => {
				store.running--;
				changed(item);
				pump();
				void follow();
			});
	}
}

/**
 * Adds files to the queue and starts uploading them.
 * @param {Api} api
 * @param {File[]} files
 * @param {{ prefix: string, prompt: string, maxTokens: number | null, headers: Record<string, string> }} options
 */
function enqueue(api, files, options) {
	store.api = api;
	for (const file of files) {
		/** @type {Upload} */
		const item = {
			n: store.count++,
			file,
			key: `${options.prefix}${file.name}`,
			prompt: options.prompt,
			maxTokens: options.maxTokens,
			headers: options.headers,
			state: "waiting",
			loaded: 0,
			error: null,
			job: null,
		};
		store.items.unshift(item);
		changed(item);
	}
	announce(`${files.length} file${files.length === 1 ? "" : "s"} added to the uploads`);
	pump();
}

/** Stops and forgets every upload (on sign-out). */
export function resetUploads() {
	store.stop.abort();
	store.stop = new AbortController();
	store.items = [];
	store.api = null;
	store.running = 0;
}

/** @param {Upload} item */
function itemView(item) {
	const progress = h("progress", {
		max: item.file.size || 1,
		value: item.loaded,
		"aria-label": `Upload of ${item.file.name}`,
	});
	const percent = item.file.size ? Math.round((item.loaded / item.file.size) * 100) : 100;
	const state =
		item.state === "failed"
			? h("span", { class: "job-error" }, `Not uploaded: ${item.error}`)
			: item.state === "uploading"
				? h("span", null, `Uploading ${percent} %`)
				: item.state === "waiting"
					? h("span", { class: "muted" }, "Waiting")
					: h("span", null, "Uploaded");
	const job = item.job;
	return h(
		"li",
		{ class: "upload", "data-key": item.key, "data-state": item.state, "data-job-status": job?.status ?? null },
		h(
			"div",
			{ class: "upload-head" },
			h("strong", null, item.file.name),
			" → ",
			h("code", null, breakAtSlashes(item.key)),
		),
		progress,
		h(
			"div",
			{ class: "upload-state" },
			state,
			job ? [" · job ", h("a", { href: `#/jobs/${job.id}` }, job.id), " ", statusBadge(job.status)] : null,
		),
		job ? h("p", { class: "upload-outcome" }, outcome(job)) : null,
	);
}

/**
 * @param {ViewContext} ctx
 * @returns {HTMLElement}
 */
export function uploadView(ctx) {
	const prefix = h("input", {
		id: "upload-prefix",
		name: "prefix",
		value: ctx.scope ?? "uploads/",
		spellcheck: "false",
		autocomplete: "off",
	});
	const prompt = h("textarea", { id: "upload-prompt", name: "prompt", rows: 2, maxlength: 2000 });
	const maxTokens = h("input", { id: "upload-max-tokens", name: "max_tokens", type: "number", min: 1, max: 2048 });
	const outputs = outputFields("upload");
	const input = h("input", {
		id: "upload-files",
		type: "file",
		accept: "image/jpeg,image/png,image/webp,image/gif,image/bmp",
		multiple: true,
		class: "file-input",
	});
	const summary = h("p", { class: "muted", "aria-live": "polite" });
	const list = h("ol", { class: "uploads", "aria-label": "Uploads, newest first" });

	/** @param {FileList | null} files */
	function add(files) {
		if (!files || files.length === 0) return;
		const tokens = Number(maxTokens.value);
		enqueue(ctx.api, Array.from(files), {
			prefix: prefix.value.trim(),
			prompt: prompt.value.trim(),
			maxTokens: maxTokens.value && Number.isInteger(tokens) && tokens > 0 ? tokens : null,
			headers: outputs.headers(),
		});
		input.value = "";
	}
	input.addEventListener("change", () => add(input.files));

	const zone = h(
		"div",
		{ class: "drop-zone", id: "drop-zone" },
		h("p", null, "Drop images here (JPEG, PNG, WebP, GIF or BMP), or"),
		input,
		h("label", { for: "upload-files", class: "button" }, "Choose images…"),
	);
	zone.addEventListener("dragover", (e) => {
		e.preventDefault();
		zone.classList.add("dragging");
	});
	zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
	zone.addEventListener("drop", (e) => {
		e.preventDefault();
		zone.classList.remove("dragging");
		add(e.dataTransfer?.files ?? null);
	});

	/** @type {Map<number, HTMLLIElement>} */
	const shown = new Map();
	function renderAll() {
		replace(
			list,
			store.items.map((item) => {
				const li = itemView(item);
				shown.set(item.n, li);
				return li;
			}),
		);
		renderSummary();
	}
	function renderSummary() {
		const items = store.items;
		const uploaded = items.filter((i) => i.state === "uploaded").length;
		const captioned = items.filter((i) => i.job?.status === "succeeded").length;
		const failed = items.filter((i) => i.state === "failed" || i.job?.status === "failed").length;
		summary.textContent = items.length
			? `${uploaded} of ${items.length} uploaded · ${captioned} captioned · ${failed} failed`
			: "Nothing uploaded in this tab yet.";
	}
	/** @param {Upload} item */
	const onChange = (item) => {
		const old = shown.get(item.n);
		if (!old) {
			renderAll();
			return;
		}
		const fresh = itemView(item);
		old.replaceWith(fresh);
		shown.set(item.n, fresh);
		renderSummary();
	};
	store.listeners.add(onChange);
	ctx.signal.addEventListener("abort", () => store.listeners.delete(onChange));
	renderAll();

	return h(
		"section",
		{ class: "view upload-view", "aria-labelledby": "view-title" },
		h("h1", { id: "view-title", tabindex: "-1" }, "Upload images"),
		h(
			"form",
			{ class: "panel upload-form", onsubmit: (/** @type {Event} */ e) => e.preventDefault() },
			field("Key prefix", prefix, "Each file is stored as this prefix followed by its name."),
			field("Prompt (optional)", prompt, "A caption instruction or a question about the image."),
			field("Max tokens (optional)", maxTokens),
			...outputs.elements,
			zone,
		),
		h("h2", null, "Uploads"),
		summary,
		list,
	);
}
