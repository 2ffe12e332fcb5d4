// @ts-check
/**
 * The dashboard's entry point: signing in and out, and the hash router (`#/jobs`, `#/jobs/{id}`,
 * `#/upload`, `#/batches`, `#/webhooks[/{id}]`, `#/stats`). The token is checked against the API
 * (`GET /v1/stats`, which also says which prefix a scoped key is limited to) and then kept in this
 * tab's sessionStorage only. The views follow the event stream (live.js); each gets an AbortSignal
 * that ends its following (or polling) when it is left.
 */
import { ApiError, createApi, messageOf } from "./api.js";
import { announce, byId, h, replace } from "./dom.js";
import { clearImages } from "./images.js";
import { liveEvents } from "./live.js";
import { batchesView } from "./views/batches.js";
import { jobView } from "./views/job.js";
import { jobsView } from "./views/jobs.js";
import { statsView } from "./views/stats.js";
import { resetUploads, uploadView } from "./views/upload.js";
import { webhooksView } from "./views/webhooks.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Stats} Stats */

/**
 * What the API offers, read from its OpenAPI document (so the page follows the server it runs on).
 * @typedef {object} Capabilities
 * @property {string[]} statuses  job statuses
 * @property {string[]} eventTypes  webhook event types
 * @property {boolean} batches  whether /v1/batches exists
 */

/**
 * @typedef {object} ViewContext
 * @property {Api} api
 * @property {string | null} scope  the object-key prefix the token is limited to; null: everything
 * @property {Capabilities} caps
 * @property {URLSearchParams} params  the query of the hash (`#/jobs?status=failed`)
 * @property {import("./live.js").Live} live  the event stream (views follow it; polling when it is down)
 * @property {AbortSignal} signal  aborted when the view is left
 * @property {(hash: string) => void} navigate
 * @property {(error: unknown) => void} onError  shows an error of a background refresh
 */

const TOKEN_KEY = "r2-captions.token";

const ui = {
	signIn: byId("sign-in", HTMLElement),
	form: byId("sign-in-form", HTMLFormElement),
	token: byId("token", HTMLInputElement),
	error: byId("token-error", HTMLElement),
	view: byId("view", HTMLElement),
	nav: byId("nav", HTMLElement),
	session: byId("session", HTMLElement),
	who: byId("who", HTMLElement),
	signOut: byId("sign-out", HTMLButtonElement),
	main: byId("main", HTMLElement),
};

/** @type {{ api: Api, scope: string | null, caps: Capabilities, live: import("./live.js").Live } | null} */
let session = null;
/** @type {AbortController | null} */
let current = null;
const banner = h("p", { class: "error banner", role: "alert", hidden: true });

/**
 * The API's job statuses, event types and batch routes, from its OpenAPI document.
 * @returns {Promise<Capabilities>}
 */
async function capabilities() {
	const fallback = {
		statuses: ["queued", "processing", "succeeded", "failed"],
		eventTypes: ["job.succeeded", "job.failed"],
	};
	try {
		const doc = await (await fetch("/openapi.json", { credentials: "omit" })).json();
		const schemas = doc?.components?.schemas ?? {};
		const list = (/** @type {unknown} */ e, /** @type {string[]} */ otherwise) =>
			Array.isArray(e) && e.every((x) => typeof x === "string") ? e : otherwise;
		return {
			statuses: list(schemas.JobStatus?.enum, fallback.statuses),
			eventTypes: list(schemas.WebhookEventType?.enum, fallback.eventTypes),
			batches: Boolean(doc?.paths?.["/v1/batches"]),
		};
	} catch {
		return { ...fallback, batches: false };
	}
}

/**
 * Checks a token with the API; answers the session, or throws the API's refusal.
 * @param {string} token
 */
async function open(token) {
	const api = createApi(token, (err) => {
		if (session?.api === api) signOut(`The API no longer accepts this token (${err.message}). Sign in again.`);
	});
	const [stats, caps] = await Promise.all([api.data(api.client.GET("/v1/stats")), capabilities()]);
	return { api, scope: stats.prefix, caps };
}

/** @param {string | null} message */
function showSignInError(message) {
	ui.error.textContent = message ?? "";
	ui.error.hidden = !message;
	if (message) ui.token.setAttribute("aria-invalid", "true");
	else ui.token.removeAttribute("aria-invalid");
}

/** @param {string} [message] */
function signOut(message) {
	sessionStorage.removeItem(TOKEN_KEY);
	session?.live.close();
	session = null;
	current?.abort();
	current = null;
	resetUploads();
	clearImages();
	replace(ui.view);
	ui.view.hidden = true;
	ui.nav.hidden = true;
	ui.session.hidden = true;
	ui.signIn.hidden = false;
	ui.token.value = "";
	showSignInError(message ?? null);
	// The tab's title named the view just left: it says what the page is now.
	document.title = "Sign in · r2-captions";
	ui.token.focus();
}

/**
 * @param {{ api: Api, scope: string | null, caps: Capabilities }} opened
 * @param {boolean} focus  move focus to the view's heading: the form that had it is hidden now
 */
function signedIn(opened, focus) {
	session = { ...opened, live: liveEvents(opened.api, opened.caps.eventTypes) };
	ui.signIn.hidden = true;
	showSignInError(null);
	ui.token.value = "";
	ui.nav.hidden = false;
	ui.session.hidden = false;
	ui.view.hidden = false;
	replace(ui.who, opened.scope === null ? "All objects" : ["Objects under ", h("code", null, opened.scope)]);
	if (!location.hash.startsWith("#/")) history.replaceState(null, "", "#/jobs");
	route(focus);
}

ui.form.addEventListener("submit", async (e) => {
	e.preventDefault();
	const token = ui.token.value.trim();
	if (!token) {
		showSignInError("Enter the admin token or an API key.");
		ui.token.focus();
		return;
	}
	const button = ui.form.querySelector("button");
	if (button) button.disabled = true;
	try {
		const opened = await open(token);
		sessionStorage.setItem(TOKEN_KEY, token);
		signedIn(opened, true);
		announce("Signed in");
	} catch (err) {
		const refused = err instanceof ApiError && err.status === 401;
		showSignInError(
			refused ? `This token was refused: ${err.message}.` : `The API could not be reached: ${messageOf(err)}`,
		);
		ui.token.select();
		ui.token.focus();
	} finally {
		if (button) button.disabled = false;
	}
});

ui.signOut.addEventListener("click", () => {
	signOut();
	announce("Signed out");
});

// ── Routing ─────────────────────────────────────────────────────────────────────────────────

/**
 * A segment of the address decoded, or null when it is not valid percent-encoding.
 * @param {string} part
 * @returns {string | null}
 */
function decodedSegment(part) {
	try {
		return decodeURIComponent(part);
	} catch {
		return null;
	}
}

/**
 * Shows the view the hash names. `focus`: move focus to its heading (a navigation, not the first load).
 * @param {boolean} focus
 */
function route(focus) {
	if (!session) return;
	const hash = location.hash;
	// Other fragments (the skip link's #main) are not routes: the view stays.
	if (!hash.startsWith("#/")) return;
	const [path = "", query = ""] = hash.slice(2).split("?");
	// An address that is not valid percent-encoding (`#/jobs/%E0`) names no page: "Not found".
	const parts = path.split("/").map(decodedSegment);
	const [section = "jobs", id] = parts.every((p) => p !== null) ? /** @type {string[]} */ (parts) : ["not-found"];
	current?.abort();
	current = new AbortController();
	banner.hidden = true;
	/** @type {ViewContext} */
	const ctx = {
		...session,
		params: new URLSearchParams(query),
		signal: current.signal,
		navigate: (to) => {
			location.hash = to;
		},
		onError: (err) => {
			banner.textContent = messageOf(err);
			banner.hidden = false;
		},
	};
	const views = {
		jobs: () => (id ? jobView(ctx, id) : jobsView(ctx)),
		upload: () => uploadView(ctx),
		batches: () => batchesView(ctx),
		webhooks: () => webhooksView(ctx, id),
		stats: () => statsView(ctx),
	};
	const known = section in views;
	const view = known
		? views[/** @type {keyof typeof views} */ (section)]()
		: h(
				"section",
				{ class: "view" },
				h("h1", { id: "view-title", tabindex: "-1" }, "Not found"),
				h("p", null, "No such page."),
			);
	replace(ui.view, banner, view);
	for (const link of ui.nav.querySelectorAll("a")) {
		if (link.getAttribute("href") === `#/${section}`) link.setAttribute("aria-current", "page");
		else link.removeAttribute("aria-current");
	}
	document.title = `${view.querySelector("h1")?.textContent ?? "Dashboard"} · r2-captions`;
	if (focus) document.getElementById("view-title")?.focus();
}

window.addEventListener("hashchange", () => route(true));

// The skip link moves focus without changing the route.
byId("skip-link", HTMLAnchorElement).addEventListener("click", (e) => {
	e.preventDefault();
	(document.getElementById("view-title") ?? ui.main).focus();
});

// ── Start ───────────────────────────────────────────────────────────────────────────────────

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
	ui.signIn.hidden = true;
	open(saved).then(
		(opened) => signedIn(opened, false),
		(err) => {
			const refused = err instanceof ApiError && err.status === 401;
			signOut(
				refused
					? "The saved token is no longer accepted. Sign in again."
					: `The API could not be reached: ${messageOf(err)}`,
			);
		},
	);
} else {
	ui.token.focus();
}
