// @ts-check
/**
 * Webhooks (`#/webhooks`, `#/webhooks/{id}`): the subscriptions the token sees, a form to add one
 * (its `whsec_` secret is shown once), each with its owner (the key that made it, or the admin) and
 * why it is disabled, and a subscription's delivery log, newest first with
 * cursor pages, every attempt, and redelivery (the same `webhook-id` is sent again).
 */
import { messageOf } from "../api.js";
import { deliveryTable } from "../deliveries.js";
import {
	actionsHeader,
	announce,
	breakAtSlashes,
	errorBox,
	field,
	h,
	keepingFocus,
	pager,
	replace,
	showError,
	statusBadge,
	tableWrap,
	timeEl,
} from "../dom.js";
import { poll } from "../poll.js";

/** @typedef {import("../client.js").WebhookEventType} WebhookEventType */

/** @typedef {import("../api.js").WebhookDelivery} WebhookDelivery */
/** @typedef {import("../api.js").WebhookDeliveryList} WebhookDeliveryList */
/** @typedef {import("../api.js").WebhookList} WebhookList */
/** @typedef {import("../api.js").WebhookSubscription} WebhookSubscription */
/** @typedef {import("../api.js").CreatedWebhookSubscription} CreatedWebhookSubscription */
/** @typedef {import("../app.js").ViewContext} ViewContext */

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
		const page = await ctx.api.data(
			ctx.api.client.GET("/v1/webhooks/{id}/deliveries", {
				params: { path: { id: sub.id }, query: { limit: 20, cursor: pages.cursor() ?? undefined } },
				signal: ctx.signal,
			}),
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
			const sub = await ctx.api.data(
				ctx.api.client.POST("/v1/webhooks", {
					body: {
						url: url.value.trim(),
						events: /** @type {WebhookEventType[]} */ (chosen),
						...(prefix.value.trim() ? { prefix: prefix.value.trim() } : {}),
					},
				}),
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
	const subsTitle = h("h2", { id: "subs-title", tabindex: "-1" }, "Subscriptions");
	const log = h("div");
	let last = "";
	let logShown = false;

	/** @param {WebhookSubscription} sub */
	async function remove(sub) {
		if (!window.confirm(`Delete the subscription to ${sub.url} and its delivery log?`)) return;
		try {
			await ctx.api.data(ctx.api.client.DELETE("/v1/webhooks/{id}", { params: { path: { id: sub.id } } }));
			announce("Subscription deleted");
			if (sub.id === selectedId) ctx.navigate("#/webhooks");
			else live.refresh();
		} catch (err) {
			ctx.onError(err);
		}
	}

	/** @param {WebhookSubscription[]} subs */
	function subscriptionsTable(subs) {
		return tableWrap(
			"Webhook subscriptions",
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
						["URL", "Events", "Prefix", "Owner", "Status", "Created"].map((t) => h("th", { scope: "col" }, t)),
						actionsHeader(),
					),
				),
				h("tbody", null, subs.map(subscriptionRow)),
			),
		);
	}

	/** @param {WebhookSubscription} sub */
	function subscriptionRow(sub) {
		return h(
			"tr",
			{ "data-webhook-id": sub.id, class: sub.id === selectedId ? "selected" : null },
			h("td", { class: "url-cell" }, h("code", null, breakAtSlashes(sub.url))),
			h("td", null, sub.events.join(", ")),
			h(
				"td",
				{ class: "key-cell" },
				sub.prefix === null ? h("span", { class: "muted" }, "all") : breakAtSlashes(sub.prefix),
			),
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
						"aria-label": `Deliveries to ${sub.url}`,
					},
					"Deliveries",
				),
				h(
					"button",
					{
						type: "button",
						class: "danger small",
						onclick: () => remove(sub),
						"aria-label": `Delete the subscription to ${sub.url}`,
					},
					"Delete",
				),
			),
		);
	}

	async function load() {
		const subs = (await ctx.api.data(ctx.api.client.GET("/v1/webhooks", { signal: ctx.signal }))).data;
		const key = JSON.stringify(subs);
		if (key === last) return;
		last = key;
		// A subscription deleted (or a row redrawn) takes its focused button away: focus stays in the list.
		keepingFocus(
			list,
			() =>
				replace(
					list,
					subs.length === 0 ? h("p", { class: "empty" }, "No subscriptions yet.") : subscriptionsTable(subs),
				),
			subsTitle,
		);
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
		h("section", { class: "panel", "aria-labelledby": "subs-title" }, subsTitle, list),
		log,
		createForm(ctx, () => live.refresh()),
	);
}
