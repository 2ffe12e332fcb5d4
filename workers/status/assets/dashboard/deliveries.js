// @ts-check
/**
 * The table of webhook deliveries, live, with every attempt and a "Redeliver" button (the same
 * `webhook-id` is sent again): a subscription's delivery log (views/webhooks.js) and a job's
 * deliveries (views/job.js) both draw it.
 */
import { actionsHeader, announce, breakAtSlashes, h, redraw, statusBadge, syncRows, tableWrap, timeEl } from "./dom.js";

/** @typedef {import("./api.js").WebhookDelivery} WebhookDelivery */
/** @typedef {import("./app.js").ViewContext} ViewContext */

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
	const text = delivery.status === "pending" ? "Sending…" : "Redeliver";
	const button = h(
		"button",
		{
			type: "button",
			class: "secondary small",
			// aria-disabled, not disabled: a disabled button loses keyboard focus to the page's body.
			"aria-disabled": delivery.status === "pending" ? "true" : null,
			// The name begins with the visible text, which speech control users say to press it.
			"aria-label": `${text} ${delivery.event_type} ${delivery.id}`,
		},
		text,
	);
	button.addEventListener("click", async () => {
		if (button.getAttribute("aria-disabled") === "true") return;
		button.setAttribute("aria-disabled", "true");
		try {
			await ctx.api.data(
				ctx.api.client.POST("/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", {
					params: { path: { id: subscriptionId, delivery_id: delivery.id } },
				}),
			);
			announce("Delivery queued again");
		} catch (err) {
			button.removeAttribute("aria-disabled");
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
	const heads = [options.context === "job" ? "Job" : "Target", "Event", "Status", "Attempts", "Last answer", "Created"];
	const element = tableWrap(
		options.caption,
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
					actionsHeader(),
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
		// A batch event has a batch and no job.
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
					? h("a", { href: `#/webhooks/${sub}` }, breakAtSlashes(d.url))
					: [h("span", { class: "tag" }, "callback"), " ", breakAtSlashes(d.url)];
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
