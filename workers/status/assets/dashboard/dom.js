// @ts-check
/**
 * DOM helpers of the dashboard: elements are built with `h()` and `svg()` (never from markup
 * strings: the page's CSP allows no string-to-HTML sink), plus the formatting every view uses.
 */

/** @typedef {Node | string | number | null | undefined | false} Leaf */
/** @typedef {Leaf | readonly Leaf[] | readonly (Leaf | readonly Leaf[])[] | readonly (Leaf | readonly Leaf[] | readonly (Leaf | readonly Leaf[])[])[]} Child */
/** @typedef {string | number | boolean | null | undefined | ((event: Event) => void)} PropValue */
/** @typedef {Record<string, PropValue>} Props */

/**
 * @param {Element} el
 * @param {Props} props
 */
function applyProps(el, props) {
	for (const [name, value] of Object.entries(props)) {
		if (value === null || value === undefined || value === false) continue;
		if (typeof value === "function") el.addEventListener(name.slice(2), value);
		else if (value === true) el.setAttribute(name, "");
		else el.setAttribute(name, String(value));
	}
}

/**
 * @param {Node} parent
 * @param {readonly Child[]} children
 */
export function append(parent, children) {
	for (const child of children) {
		if (child === null || child === undefined || child === false) continue;
		if (child instanceof Node) parent.appendChild(child);
		else if (typeof child === "string" || typeof child === "number")
			parent.appendChild(document.createTextNode(String(child)));
		else append(parent, child);
	}
}

/**
 * An HTML element: `h("button", { type: "button", onclick: go }, "Go")`. Attributes named `on…`
 * with a function become event listeners; `true` sets an empty attribute; false or null omit it.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
	const el = document.createElement(tag);
	if (props) applyProps(el, props);
	append(el, children);
	return el;
}

/**
 * An object key (or a URL) that wraps after a `/` rather than between any two letters: its text with
 * a `<wbr>` after every slash. With `overflow-wrap: break-word` (style.css) a segment wider than the
 * space left still breaks, but only then.
 * @param {string} text
 * @returns {Leaf[]}
 */
export function breakAtSlashes(text) {
	const parts = text.split("/");
	return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}/`, h("wbr", null)] : [part]));
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An SVG element, with the same conventions as `h()`.
 * @param {string} tag
 * @param {Props | null} [props]
 * @param {...Child} children
 * @returns {SVGElement}
 */
export function svg(tag, props, ...children) {
	const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
	if (props) applyProps(el, props);
	append(el, children);
	return el;
}

/**
 * Replaces the children of `parent`.
 * @param {Node} parent
 * @param {...Child} children
 */
export function replace(parent, ...children) {
	while (parent.firstChild) parent.removeChild(parent.firstChild);
	append(parent, children);
}

/**
 * The element with this id, of the expected type (the page's shell defines them).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
	const el = document.getElementById(id);
	if (!(el instanceof type)) throw new Error(`#${id} is missing from the page`);
	return el;
}

/**
 * Tells screen-reader users what changed (the page's polite live region).
 * @param {string} message
 */
export function announce(message) {
	const region = document.getElementById("announcer");
	if (!region) return;
	region.textContent = "";
	// A fresh text node after a tick is announced even when it repeats the last message.
	setTimeout(() => {
		region.textContent = message;
	}, 50);
}

// ── Formatting ──────────────────────────────────────────────────────────────────────────────

/** @param {number | null | undefined} ms */
export function duration(ms) {
	if (ms === null || ms === undefined) return "–";
	if (ms < 1000) return `${Math.round(ms)} ms`;
	if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
	return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** @param {number | null | undefined} n */
export function byteSize(n) {
	if (n === null || n === undefined) return "–";
	if (n < 1024) return `${n} B`;
	if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
	return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

/** @param {string} iso */
export function clock(iso) {
	return clockFormat.format(new Date(iso));
}

/**
 * A `<time>` element: relative ("2 minutes ago") with the full date as its title.
 * @param {string | null | undefined} iso
 */
export function timeEl(iso) {
	if (!iso) return h("span", { class: "muted" }, "–");
	const date = new Date(iso);
	const seconds = Math.round((date.getTime() - Date.now()) / 1000);
	const abs = Math.abs(seconds);
	const text =
		abs < 60
			? relative.format(seconds, "second")
			: abs < 3600
				? relative.format(Math.round(seconds / 60), "minute")
				: abs < 86_400
					? relative.format(Math.round(seconds / 3600), "hour")
					: timeFormat.format(date);
	return h("time", { datetime: iso, title: timeFormat.format(date) }, text);
}

/** @param {string} iso */
export const fullTime = (iso) => timeFormat.format(new Date(iso));

/**
 * A job or batch status as a badge (its colour comes from the status, its text says it).
 * @param {string} status
 */
export const statusBadge = (status) => h("span", { class: `status status-${status}`, "data-field": "status" }, status);

/** `@cf/unum/uform-gen2-qwen-500m` → `unum/uform-gen2-qwen-500m`. @param {string | null} model */
export const shortModel = (model) => (model ? model.replace(/^@cf\//, "") : "–");

/**
 * A labelled form control: `<label for>` + the control (+ an optional hint tied with aria-describedby).
 * @param {string} label
 * @param {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} control
 * @param {string} [hint]
 */
export function field(label, control, hint) {
	const hintId = hint ? `${control.id}-hint` : null;
	if (hintId) control.setAttribute("aria-describedby", hintId);
	return h(
		"div",
		{ class: "field" },
		h("label", { for: control.id }, label),
		control,
		hint ? h("p", { class: "help", id: hintId }, hint) : null,
	);
}

/**
 * An error paragraph that screen readers announce when it gets text.
 * @param {string} id
 */
export const errorBox = (id) => h("p", { id, class: "error", role: "alert", hidden: true });

/**
 * @param {HTMLElement} box
 * @param {string | null} message
 */
export function showError(box, message) {
	box.textContent = message ?? "";
	box.hidden = !message;
}

/**
 * Keeps a table body's rows in the order of `items`, one row per key: a new item gets
 * `create(item)`, a row already there is handed to `update(row, item)` and stays the same element
 * (so keyboard focus inside it survives a refresh), and rows whose item left are removed.
 * @template T
 * @param {HTMLTableSectionElement} tbody
 * @param {T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => HTMLTableRowElement} create
 * @param {(row: HTMLTableRowElement, item: T) => void} update
 */
export function syncRows(tbody, items, keyOf, create, update) {
	/** @type {Map<string, HTMLTableRowElement>} */
	const existing = new Map();
	for (const tr of Array.from(tbody.rows)) existing.set(tr.dataset.key ?? "", tr);
	items.forEach((item, i) => {
		const key = keyOf(item);
		let tr = existing.get(key);
		if (tr) update(tr, item);
		else {
			tr = create(item);
			tr.dataset.key = key;
		}
		if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null);
	});
	while (tbody.rows.length > items.length) tbody.rows[items.length]?.remove();
}

/**
 * Redraws a cell only when what it shows changed (`version`, any string that says so). Keyboard
 * focus on a control of the cell stays in the cell (keepingFocus).
 * @param {HTMLTableCellElement | undefined} cell
 * @param {string} version
 * @param {() => Child} draw
 */
export function redraw(cell, version, draw) {
	if (!cell || cell.dataset.version === version) return;
	cell.dataset.version = version;
	keepingFocus(cell, () => replace(cell, draw()));
}

const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), summary";

/** A control's name as a screen reader says it (near enough: its aria-label, else its text). @param {Element} el */
const nameOf = (el) => el.getAttribute("aria-label") ?? el.textContent?.trim() ?? "";

/**
 * Runs `change`, which redraws what is inside `container`, and keeps keyboard focus there: when
 * focus was on a control inside that the change took away (a batch's Start button once it has
 * started), it goes to the new control of the same name, else to `fallback`, else to the first
 * control left inside. Otherwise focus would fall back to the page's body, and a keyboard or
 * screen-reader user would start again from the top of the page.
 * @param {Element} container
 * @param {() => void} change
 * @param {HTMLElement | null} [fallback]
 */
export function keepingFocus(container, change, fallback = null) {
	const was = document.activeElement;
	const inside = was instanceof HTMLElement && was !== container && container.contains(was);
	const name = inside ? nameOf(was) : "";
	change();
	if (!inside || was.isConnected) return;
	const controls = Array.from(container.querySelectorAll(FOCUSABLE));
	const target = controls.find((c) => nameOf(c) === name) ?? fallback ?? controls[0];
	if (target instanceof HTMLElement || target instanceof SVGElement) target.focus();
}

/** The header of a table's column of buttons: named for screen readers, blank on the screen. */
export const actionsHeader = () => h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions"));

/**
 * The box of a table, which scrolls sideways when the table is wider than the screen. It is a named
 * region that takes focus, so that a keyboard user can scroll it with the arrow keys even when none
 * of its cells holds a link or a button.
 * @param {string} label  the region's name (the table's caption)
 * @param {HTMLTableElement} table
 * @param {Props} [props]
 */
export const tableWrap = (label, table, props) =>
	h("div", { class: "table-wrap", role: "region", "aria-label": label, tabindex: 0, ...props }, table);

/**
 * "Newer" and "Older" buttons over a list the API pages with a keyset cursor: a stack of the
 * cursors of the pages before, the current page's last. `loaded(next_cursor)` after each load.
 * @param {string} label  the navigation's accessible name
 * @param {() => void} refresh  loads the list again after a page change
 */
export function pager(label, refresh) {
	/** @type {string[]} */
	const cursors = [];
	/** @type {string | null} */
	let next = null;
	const newer = h("button", { type: "button", class: "secondary", disabled: true }, "← Newer");
	const older = h("button", { type: "button", class: "secondary", disabled: true }, "Older →");
	const position = h("span", { class: "muted" });
	newer.addEventListener("click", () => {
		cursors.pop();
		refresh();
	});
	older.addEventListener("click", () => {
		if (next === null) return;
		cursors.push(next);
		refresh();
	});
	return {
		element: h("nav", { class: "pager", "aria-label": label }, newer, position, older),
		/** The cursor of the page to load (undefined: the first). */
		cursor: () => cursors.at(-1),
		/** Whether the first (newest) page is shown. */
		first: () => cursors.length === 0,
		/** @param {string | null} nextCursor */
		loaded(nextCursor) {
			next = nextCursor;
			older.disabled = next === null;
			newer.disabled = cursors.length === 0;
			position.textContent = cursors.length > 0 || next !== null ? `Page ${cursors.length + 1}` : "";
		},
		reset() {
			cursors.length = 0;
		},
	};
}
