// @ts-check
/**
 * Webhooks (`#/webhooks`, `#/webhooks/{id}`): the subscriptions the token sees, a form to add one
 * (its `whsec_` secret is shown once), each with its owner (the key that made it, or the admin) and
 * why it is disabled, and a subscription's delivery log, newest first with
 * cursor pages, every attempt, and redelivery (the same `webhook-id` is sent again).
 */
import { messageOf } from "../api.js";
import {
	announce,
	errorBox,
	field,
	h,
	pager,
	redraw,
	replace,
	showError,
	statusBadge,
	syncRows,
	timeEl,
} from "../dom.js";
import { poll } from "../poll.js";

/** @typedef {import("../api.js").WebhookDelivery} WebhookDelivery */
/** @typedef {import("../api.js").WebhookDeliveryList} WebhookDeliveryList */
/** @typedef {import("../api.js").WebhookList} WebhookList */
/** @typedef {import("../api.js").WebhookSubscription} WebhookSubscription */
/** @typedef {import("../api.js").CreatedWebhookSubscription} CreatedWebhookSubscription */
/** @typedef {import("../app.js").ViewContext} ViewContext */

/** @param {WebhookDelivery} d */
export const deliveryStatus = (d) => statusBadge(d.status);

/**
 * "Redeliver": sends a finished delivery again, then refreshes the view.
 * @param {ViewContext} ctx
 * @param {string} subscriptionId
 * @param {WebhookDelivery} delivery
 * @param {() => void} refresh
 */
export function redeliverButton(ctx, subscriptionId, delivery, refresh) {
	const button = h(
		"button",
		{
			type: "button",
			class: "secondary small",
			disabled: delivery.status === "pending",
			"aria-label": `Redeliver ${delivery.event_type} ${delivery.id}`,
		},
		delivery.status === "pending" ? "Sending…" : "Redeliver",
	);
	button.addEventListener("click", async () => {
		button.disabled = true;
		try {
			await ctx.api.post(
				`/v1/webhooks/${encodeURIComponent(subscriptionId)}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`,
			);
			announce("Delivery queued again");
		} catch (err) {
			ctx.onError(err);
		}
		refresh();
	});
	return button;
}

/** @param {WebhookDelivery} d */
function attempts(d) {
	if (d.attempt_log.length === 0) return h("span", { class: "muted" }, "none yet");
	return h(
		"details",
		null,
		h("summary", null, `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`),
		h(
			"ol",
			{ class: "attempts" },
			d.attempt_log.map((a) =>
				h(
					"li",
					null,
					timeEl(a.started_at),
					`: ${a.status_code === null ? "no answer" : `HTTP ${a.status_code}`} in ${a.duration_ms} ms`,
					a.error ? ` (${a.error})` : "",
				),
			),
		),
	);
}

/**
 * @typedef {object} DeliveryTableOptions
 * @property {string} caption
 * @property {"job" | "target"} context  the delivery log shows each delivery's job; a job page, its target
 * @property {string | null} [subscriptionId]  the subscription of every row (the delivery log's)
 * @property {() => void} refresh  called after a redelivery
 */

/**
 * A live table of deliveries: `update(list)` redraws only what changed.
 * @param {ViewContext} ctx
 * @param {DeliveryTableOptions} options
 */
export function deliveryTable(ctx, options) {
	const tbody = h("tbody");
	const heads = [
		options.context === "job" ? "Job" : "Target",
		"Event",
		"Status",
		"Attempts",
		"Last answer",
		"Created",
		"",
	];
	const element = h(
		"div",
		{ class: "table-wrap" },
		h(
			"table",
			{ class: "deliveries-table" },
			h("caption", { class: "visually-hidden" }, options.caption),
			h(
				"thead",
				null,
				h(
					"tr",
					null,
					heads.map((t) => h("th", { scope: "col" }, t)),
				),
			),
			tbody,
		),
	);

	/** @param {WebhookDelivery & { subscription_id?: string | null }} d */
	const subscriptionOf = (d) => options.subscriptionId ?? d.subscription_id ?? null;

	/**
	 * @param {HTMLTableRowElement} tr
	 * @param {WebhookDelivery & { subscription_id?: string | null }} d
	 */
	function fill(tr, d) {
		const [, , state, tries, answer, created, action] = Array.from(tr.cells);
		tr.dataset.status = d.status;
		redraw(state, d.status, () => deliveryStatus(d));
		redraw(tries, JSON.stringify(d.attempt_log), () => attempts(d));
		redraw(answer, `${d.last_status_code} ${d.last_error}`, () =>
			d.last_status_code ? `HTTP ${d.last_status_code}` : (d.last_error ?? "–"),
		);
		redraw(created, `${d.created_at} ${Math.floor(Date.now() / 30_000)}`, () => timeEl(d.created_at));
		const sub = subscriptionOf(d);
		redraw(action, d.status, () =>
			sub ? redeliverButton(ctx, sub, d, options.refresh) : h("span", { class: "muted" }, "–"),
		);
	}

	/** @param {WebhookDelivery & { subscription_id?: string | null }} d */
	function row(d) {
		const sub = subscriptionOf(d);
		// A batch event (issue 11) has a batch and no job.
		const batchId = /** @type {{ batch_id?: string | null }} */ (d).batch_id;
		const subject = d.job_id
			? h("a", { href: `#/jobs/${d.job_id}` }, d.job_id)
			: batchId
				? h("a", { href: `#/jobs?batch=${encodeURIComponent(batchId)}` }, batchId)
				: "–";
		const first =
			options.context === "job"
				? subject
				: sub
					? h("a", { href: `#/webhooks/${sub}` }, d.url)
					: [h("span", { class: "tag" }, "callback"), " ", d.url];
		const tr = h(
			"tr",
			{ "data-delivery-id": d.id },
			h("td", { class: "url-cell" }, first),
			h("td", null, d.event_type),
			h("td"),
			h("td"),
			h("td"),
			h("td"),
			h("td"),
		);
		fill(tr, d);
		return tr;
	}

	return {
		element,
		/** @param {(WebhookDelivery & { subscription_id?: string | null })[]} deliveries */
		update(deliveries) {
			syncRows(tbody, deliveries, (d) => d.id, row, fill);
			element.hidden = deliveries.length === 0;
		},
	};
}

/**
 * The delivery log of one subscription.
 * @param {ViewContext} ctx
 * @param {WebhookSubscription} sub
 */
function deliveryLog(ctx, sub) {
	const pages = pager("Delivery pages", () => live.refresh());
	const empty = h("p", { class: "empty" }, "Loading…");
	const table = deliveryTable(ctx, {
		caption: `Deliveries to ${sub.url}, newest first`,
		context: "job",
		subscriptionId: sub.id,
		refresh: () => live.refresh(),
	});

	async function load() {
		const page = /** @type {WebhookDeliveryList} */ (
			await ctx.api.get(
				`/v1/webhooks/${encodeURIComponent(sub.id)}/deliveries`,
				{ limit: 20, cursor: pages.cursor() },
				ctx.signal,
			)
		);
		pages.loaded(page.next_cursor);
		table.update(page.data);
		empty.textContent = "No deliveries yet: they appear when a matching job finishes.";
		empty.hidden = page.data.length > 0;
	}

	const live = poll(ctx.signal, 2500, load, ctx.onError);
	return h(
		"section",
		{ class: "panel", "aria-labelledby": "deliveries-title" },
		h("h2", { id: "deliveries-title" }, "Deliveries to ", h("code", null, sub.url)),
		empty,
		table.element,
		pages.element,
	);
}

/**
 * @param {ViewContext} ctx
 * @param {() => void} refresh
 */
function createForm(ctx, refresh) {
	const url = h("input", { id: "webhook-url", name: "url", type: "url", required: true, placeholder: "https://…" });
	const prefix = h("input", { id: "webhook-prefix", name: "prefix", value: ctx.scope ?? "", spellcheck: "false" });
	const events = ctx.caps.eventTypes.map((type) =>
		h(
			"label",
			{ class: "check" },
			h("input", { type: "checkbox", name: "events", value: type, checked: type.startsWith("job.") }),
			` ${type}`,
		),
	);
	const problem = errorBox("webhook-error");
	const created = h("div", { class: "notice", hidden: true, role: "status" });
	const form = h(
		"form",
		{ class: "panel", "aria-labelledby": "new-webhook-title", novalidate: true },
		h("h2", { id: "new-webhook-title" }, "New subscription"),
		field("URL", url, "Receives a signed POST (Standard Webhooks) for each matching event."),
		h("fieldset", null, h("legend", null, "Events"), events),
		field("Key prefix (optional)", prefix, "Only jobs whose object key starts with this."),
		problem,
		h("button", { type: "submit" }, "Subscribe"),
		created,
	);
	form.addEventListener("submit", async (e) => {
		e.preventDefault();
		const chosen = Array.from(form.querySelectorAll("input[name=events]:checked"), (i) =>
			i instanceof HTMLInputElement ? i.value : "",
		);
		try {
			const sub = /** @type {CreatedWebhookSubscription} */ (
				await ctx.api.post("/v1/webhooks", {
					url: url.value.trim(),
					events: chosen,
					...(prefix.value.trim() ? { prefix: prefix.value.trim() } : {}),
				})
			);
			showError(problem, null);
			replace(
				created,
				h("p", null, "Subscribed. Its signing secret, shown this once (verify deliveries with it):"),
				h("p", null, h("code", { class: "secret" }, sub.secret)),
			);
			created.hidden = false;
			url.value = "";
			refresh();
		} catch (err) {
			showError(problem, messageOf(err));
			url.focus();
		}
	});
	return form;
}

/**
 * @param {ViewContext} ctx
 * @param {string | undefined} selectedId
 * @returns {HTMLElement}
 */
export function webhooksView(ctx, selectedId) {
	const list = h("div", null, h("p", { class: "muted" }, "Loading…"));
	const log = h("div");
	let last = "";
	let logShown = false;

	/** @param {WebhookSubscription} sub */
	async function remove(sub) {
		if (!window.confirm(`Delete the subscription to ${sub.url} and its delivery log?`)) return;
		try {
			await ctx.api.delete(`/v1/webhooks/${encodeURIComponent(sub.id)}`);
			announce("Subscription deleted");
			if (sub.id === selectedId) ctx.navigate("#/webhooks");
			else live.refresh();
		} catch (err) {
			ctx.onError(err);
		}
	}

	async function load() {
		const subs = /** @type {WebhookList} */ (await ctx.api.get("/v1/webhooks", {}, ctx.signal)).data;
		const key = JSON.stringify(subs);
		if (key === last) return;
		last = key;
		if (subs.length === 0) {
			replace(list, h("p", { class: "empty" }, "No subscriptions yet."));
		} else {
			replace(
				list,
				h(
					"div",
					{ class: "table-wrap" },
					h(
						"table",
						{ class: "webhooks-table" },
						h("caption", { class: "visually-hidden" }, "Webhook subscriptions"),
						h(
							"thead",
							null,
							h(
								"tr",
								null,
								["URL", "Events", "Prefix", "Owner", "Status", "Created", ""].map((t) => h("th", { scope: "col" }, t)),
							),
						),
						h(
							"tbody",
							null,
							subs.map((sub) =>
								h(
									"tr",
									{ "data-webhook-id": sub.id, class: sub.id === selectedId ? "selected" : null },
									h("td", { class: "url-cell" }, h("code", null, sub.url)),
									h("td", null, sub.events.join(", ")),
									h("td", null, sub.prefix ?? h("span", { class: "muted" }, "all")),
									h("td", null, sub.key_id ? h("code", null, sub.key_id) : h("span", { class: "muted" }, "admin")),
									h("td", null, statusBadge(sub.status), sub.disabled_reason ? ` ${sub.disabled_reason}` : ""),
									h("td", null, timeEl(sub.created_at)),
									h(
										"td",
										{ class: "actions" },
										h(
											"a",
											{
												href: `#/webhooks/${sub.id}`,
												class: "button secondary small",
												"aria-current": sub.id === selectedId ? "true" : null,
											},
											"Deliveries",
										),
										h("button", { type: "button", class: "danger small", onclick: () => remove(sub) }, "Delete"),
									),
								),
							),
						),
					),
				),
			);
		}
		const selected = subs.find((s) => s.id === selectedId);
		if (selected && !logShown) {
			logShown = true;
			replace(log, deliveryLog(ctx, selected));
		} else if (selectedId && !selected) {
			replace(log, h("p", { class: "error" }, `There is no subscription ${selectedId} visible to this token.`));
		}
	}

	const live = poll(ctx.signal, 5000, load, ctx.onError);
	return h(
		"section",
		{ class: "view webhooks-view", "aria-labelledby": "view-title" },
		h("h1", { id: "view-title", tabindex: "-1" }, "Webhooks"),
		h(
			"section",
			{ class: "panel", "aria-labelledby": "subs-title" },
			h("h2", { id: "subs-title" }, "Subscriptions"),
			list,
		),
		log,
		createForm(ctx, () => live.refresh()),
	);
}
