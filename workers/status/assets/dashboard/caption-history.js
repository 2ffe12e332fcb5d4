// @ts-check
/**
 * An object's caption over time (the job view): its current caption, every version newest first
 * (who made it: a model or a person), and an edit box that writes a human version
 * (`PUT /v1/captions/{key}`), which stays current until a re-caption with `overwrite_human`.
 */
import { messageOf } from "./api.js";
import { announce, errorBox, field, h, replace, shortModel, showError, timeEl } from "./dom.js";

/** @typedef {import("./app.js").ViewContext} ViewContext */

/**
 * @param {ViewContext} ctx
 * @param {string} key
 * @returns {{ element: HTMLElement, load: () => Promise<void> }}
 */
export function captionHistory(ctx, key) {
	const list = h("div", { class: "caption-history", "aria-live": "polite" }, h("p", { class: "empty" }, "Loading…"));
	const text = h("textarea", { id: "caption-edit", name: "text", rows: 3, maxlength: 10000 });
	const problem = errorBox("caption-edit-error");
	const form = h(
		"form",
		{ class: "panel caption-edit", "aria-labelledby": "caption-edit-title", novalidate: true },
		h("h3", { id: "caption-edit-title" }, "Write the caption"),
		field(
			"Caption",
			text,
			"Saved as a human version: it stays current until a re-caption that overwrites human captions.",
		),
		problem,
		h("button", { type: "submit" }, "Save caption"),
	);

	async function load() {
		try {
			const caption = await ctx.api.data(
				ctx.api.client.GET("/v1/captions/{key}", { params: { path: { key } }, signal: ctx.signal }),
			);
			if (!text.value) text.value = caption.text;
			// The current caption is the newest version, unless a person's version is kept current
			// behind later ones: the newest version that is the caption (text, source and job).
			const current = caption.history.find(
				(v) => v.text === caption.text && v.source === caption.source && v.job_id === caption.job_id,
			);
			replace(
				list,
				h(
					"ol",
					{ reversed: true, "aria-label": `Caption versions of ${key}` },
					caption.history.map((v) =>
						h(
							"li",
							{
								"data-version": String(v.version),
								"data-source": v.source,
								...(v === current ? { "data-current": "true" } : {}),
							},
							h("strong", null, `v${v.version}`),
							" ",
							v.source === "human" ? "by hand" : shortModel(v.model),
							" · ",
							timeEl(v.created_at),
							v === current ? " (current)" : "",
							h("p", { class: "caption-full" }, v.text),
						),
					),
				),
			);
		} catch (err) {
			const none = err instanceof Error && "status" in err && err.status === 404;
			replace(list, h("p", { class: "empty" }, none ? "No caption yet." : messageOf(err)));
		}
	}

	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		if (!text.value.trim()) {
			showError(problem, "Enter the caption.");
			text.focus();
			return;
		}
		try {
			await ctx.api.data(
				ctx.api.client.PUT("/v1/captions/{key}", { params: { path: { key } }, body: { text: text.value.trim() } }),
			);
			showError(problem, null);
			announce("Caption saved");
			await load();
		} catch (err) {
			showError(problem, messageOf(err));
		}
	});

	return { element: h("div", { class: "caption-panel" }, h("h2", null, "Caption history"), list, form), load };
}
