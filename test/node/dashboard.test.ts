/**
 * The dashboard in a real browser (headless Chromium) against the local stack: sign-in (a wrong
 * token refused), two images uploaded through the file input and captioned before our eyes, one
 * uploaded for German tags written back as a sidecar (its job page lists the tags and the
 * write-back), the live job list (no preview asked of a damaged image's failed job), a job page, an object's caption history with a caption written by
 * hand, a webhook delivery sent again, the stats charts, a prefix batch followed to 100 %, a dry-run
 * batch planned and started, and a scoped key that sees only its prefix. Set-up and checks go through
 * the typed client (client/). With SCREENSHOTS=1 every page is saved as a screenshot in
 * test-results/screenshots/; a failing test always saves the page it failed on there
 * (failed-<test>.png).
 *
 * The stack is the node project's shared `npm run dev` (test/node/support/shared-stack.ts): other
 * files' jobs, batches and subscriptions are on it at the same time. So every key of this file starts
 * with `dashboard-${run}`, the job lists it reads are filtered to its prefixes, its batches and its
 * subscription are found by id, the job counts and throughput are read with a key limited to its
 * prefix (in a tab of its own), and the admin's lanes are compared with the API's until they agree.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ConsoleMessage, HTTPRequest, HTTPResponse, Page, SerializedAXNode } from "puppeteer-core";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createR2cClient, type Job, listAllJobs, ok, type R2cClient, uploadImage } from "../../client/index.ts";
import { until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { collectErrors, launchBrowser, saveScreenshot, screenshot, type TestBrowser } from "./support/browser.ts";
import { type SharedStack, sharedDevStack } from "./support/shared-stack.ts";

const sample = (name: string) => path.join(root, "samples", name);
const run = Date.now().toString(36);
/** Every key of this file starts with `dashboard-${run}`: other files' jobs share the stack. */
const prefix = `dashboard-${run}/`;

let stack: SharedStack;
let api: R2cClient;
let chrome: TestBrowser;
let page: Page;
let errors: string[];
/** The paths the page was answered 415 for (an object no preview can be made of), decoded. */
const unpreviewable: string[] = [];

// ── A webhook receiver: the first request of each delivery is refused (400, not retried), later ones accepted.
interface Received {
	webhookId: string;
	type: string;
	jobId: string;
}
const received: Received[] = [];
let receiverUrl = "";
let webhookSecret = "";
let subscriptionId = "";
const receiver = createServer((req, res) => {
	let body = "";
	req.on("data", (chunk: Buffer) => {
		body += chunk;
	});
	req.on("end", () => {
		const headers = req.headers as IncomingHttpHeaders & Record<string, string>;
		try {
			const event = new Webhook(webhookSecret).verify(body, headers) as { type: string; data: { id: string } };
			const webhookId = String(headers["webhook-id"]);
			const first = !received.some((r) => r.webhookId === webhookId);
			received.push({ webhookId, type: event.type, jobId: event.data.id });
			res.writeHead(first ? 400 : 204).end();
		} catch {
			res.writeHead(401).end();
		}
	});
});

beforeAll(async () => {
	stack = await sharedDevStack();
	await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
	receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
	chrome = await launchBrowser();
	page = await chrome.browser.newPage();
	await page.setViewport({ width: 1280, height: 900 });
	errors = collectErrors(page);
	page.on("response", (res) => {
		if (res.status() === 415) unpreviewable.push(decodeURIComponent(new URL(res.url()).pathname));
	});
	api = createR2cClient({ baseUrl: stack.url, token: stack.token });
	const subscription = await ok(
		api.POST("/v1/webhooks", { body: { url: receiverUrl, events: ["job.succeeded", "job.failed"], prefix } }),
	);
	webhookSecret = subscription.secret;
	subscriptionId = subscription.id;
}, 180_000);

beforeEach(({ task, onTestFailed }) => {
	onTestFailed(async () => {
		const name = task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
		if (page) await saveScreenshot(page, `failed-${name}`).catch(() => undefined);
	});
});

afterAll(async () => {
	await chrome?.close();
	receiver.close();
	await stack?.release();
});

/** Text of the first element matching `selector` (in `tab`, the test's page unless given), or null. */
const textOf = (selector: string, tab: Page = page) =>
	tab.$eval(selector, (el) => el.textContent ?? "").catch(() => null);

/** Waits until `probe` (run in the page, given `arg`) is true; shows what the page says when it never is. */
async function waitInPage(what: string, probe: (arg: string) => boolean, timeout = 60_000, arg = ""): Promise<void> {
	try {
		await page.waitForFunction(probe, { timeout, polling: 250 }, arg);
	} catch (err) {
		const shown = await page.$eval("main", (m) => (m as HTMLElement).innerText).catch(() => "");
		throw new Error(`${what}: ${String(err)}\n--- the page shows ---\n${shown.slice(0, 3000)}`);
	}
}

async function signIn(token: string, tab: Page = page): Promise<void> {
	await tab.$eval("#token", (input) => {
		(input as HTMLInputElement).value = "";
	});
	await tab.type("#token", token);
	await tab.click("#sign-in-form button[type=submit]");
}

/**
 * Filters the jobs list on the page to the keys under `keyPrefix` through its form (other files' jobs
 * are on the stack too); returns once the filtered view has replaced the one before (its rows load after).
 */
async function filterJobs(keyPrefix: string): Promise<void> {
	await page.waitForSelector(".jobs-view #filter-prefix");
	const before = await page.$(".jobs-view");
	await page.$eval("#filter-prefix", (input) => {
		(input as HTMLInputElement).value = "";
	});
	await page.type("#filter-prefix", keyPrefix);
	await page.click(".filters button[type=submit]");
	await page.waitForFunction((view) => !view?.isConnected, {}, before);
	expect(await page.evaluate(() => location.hash)).toBe(jobsUnder(keyPrefix));
}

/** The address of the jobs list filtered to the keys under `keyPrefix`, as the filter form makes it. */
const jobsUnder = (keyPrefix: string) => `#/jobs?prefix=${encodeURIComponent(keyPrefix)}`;

/**
 * Goes to the jobs list filtered to the keys under `keyPrefix` through the address, where the filters
 * live (no reload; the list of every file's jobs is never drawn); returns once that view is shown.
 */
async function showJobsUnder(keyPrefix: string): Promise<void> {
	const before = await page.$("section.view");
	await page.evaluate((hash) => {
		location.hash = hash;
	}, jobsUnder(keyPrefix));
	await page.waitForFunction((view) => !view?.isConnected, {}, before);
	await page.waitForSelector(".jobs-view");
}

/** The id of the batch that `submit` (the batch form's button) makes, from the API's answer to the page. */
async function createdBatch(submit: () => Promise<void>): Promise<string> {
	const answer = page.waitForResponse(
		(res) => res.request().method() === "POST" && new URL(res.url()).pathname === "/v1/batches",
	);
	await submit();
	const res = await answer;
	expect(res.status()).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

/** The roles a screen reader reads out by their name: without one it says just "button", "link"… */
const NEEDS_NAME = new Set([
	"textbox",
	"searchbox",
	"combobox",
	"checkbox",
	"radio",
	"spinbutton",
	"button",
	"link",
	"columnheader",
	"progressbar",
	"image",
	"navigation",
	"region",
	"table",
]);

/**
 * What a screen-reader or keyboard user would stumble on in the page as shown, from Chromium's
 * accessibility tree and the layout: a control, link, image or column header without a name; a
 * control whose name leaves out its visible text (speech control users say that text to press it); a
 * table wider than its box that the keyboard cannot reach to scroll.
 */
async function accessibilityProblems(): Promise<string[]> {
	const problems: string[] = [];
	const walk = (node: SerializedAXNode) => {
		if (NEEDS_NAME.has(node.role) && !node.name?.trim()) problems.push(`a ${node.role} without a name`);
		for (const child of node.children ?? []) walk(child);
	};
	const tree = await page.accessibility.snapshot({ interestingOnly: false });
	if (tree) walk(tree);
	const inPage = await page.evaluate(() => {
		const found: string[] = [];
		for (const el of Array.from(document.querySelectorAll("a[aria-label], button[aria-label]"))) {
			const text = (el.textContent ?? "").trim();
			const name = el.getAttribute("aria-label") ?? "";
			if (!name.toLowerCase().includes(text.toLowerCase())) found.push(`"${name}" does not contain its text "${text}"`);
		}
		for (const box of Array.from(document.querySelectorAll<HTMLElement>(".table-wrap"))) {
			const scrolls = box.scrollWidth > box.clientWidth + 1;
			if (scrolls && (box.tabIndex !== 0 || !box.getAttribute("aria-label"))) {
				found.push(`a table that scrolls sideways out of the keyboard's reach (${box.textContent?.slice(0, 40)})`);
			}
		}
		return found;
	});
	return [...problems, ...inPage];
}

/** Waits until keyboard focus is on the element `selector` names. */
const focusOn = (selector: string, timeout = 10_000) =>
	page.waitForFunction((s) => document.activeElement?.matches(s) === true, { timeout, polling: 100 }, selector);

/** Goes to a section through its link in the navigation (no reload), once its view is drawn. */
async function open(section: string): Promise<void> {
	await page.click(`#nav a[href="#/${section}"]`);
	await page.waitForFunction(
		(href) => document.querySelector('#nav a[aria-current="page"]')?.getAttribute("href") === href,
		{},
		`#/${section}`,
	);
}

describe("the dashboard", () => {
	it("loads without a token, refuses a wrong token, and keeps the right one in sessionStorage only", async () => {
		const res = await page.goto(`${stack.url}/`, { waitUntil: "load" });
		expect(res?.status()).toBe(200);
		expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
		await page.waitForSelector("#token");
		expect(await page.title()).toBe("Sign in · r2-captions");
		expect(await accessibilityProblems()).toEqual([]);
		await screenshot(page, "dashboard-01-sign-in");

		await signIn("not-a-token");
		await page.waitForSelector("#token-error:not([hidden])");
		expect(await textOf("#token-error")).toMatch(/refused.*Invalid or revoked token/);
		expect(await page.$eval("#token", (i) => i.getAttribute("aria-invalid"))).toBe("true");
		expect(await page.$eval("#nav", (n) => (n as HTMLElement).hidden)).toBe(true);
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		await screenshot(page, "dashboard-02-wrong-token");

		await signIn(stack.token);
		await page.waitForSelector(".jobs-view");
		// The form that had focus is gone: focus is on the heading of the view shown instead.
		await focusOn(".jobs-view #view-title");
		expect(await page.title()).toBe("Jobs · r2-captions");
		expect(await textOf("#who")).toBe("All objects");
		expect(await page.evaluate(() => sessionStorage.getItem("r2-captions.token"))).toBe(stack.token);
		// Never in the address, never in a cookie.
		expect(page.url()).not.toContain(stack.token);
		expect(page.url()).toBe(`${stack.url}/#/jobs`);
		expect(await page.evaluate(() => document.cookie)).toBe("");
		expect((await page.browserContext().cookies()).length).toBe(0);
		// A marker that a reload would wipe: every later step happens without one.
		await page.evaluate(() => {
			(window as unknown as { notReloaded: boolean }).notReloaded = true;
		});
	});

	it("uploads two images through the file input and shows each file's progress, job and caption", async () => {
		await open("upload");
		await page.$eval("#upload-prefix", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.type("#upload-prefix", prefix);
		await page.type("#upload-prompt", "Décris les couleurs ✓");
		const input = await page.$("input#upload-files");
		await input?.uploadFile(sample("striped-sailboat.jpg"), sample("shapes-on-white.png"));

		await waitInPage(
			"both uploads to be captioned",
			() => document.querySelectorAll('li.upload[data-job-status="succeeded"]').length === 2,
		);
		const uploads = await page.$$eval("li.upload", (items) =>
			items.map((li) => ({
				key: li.getAttribute("data-key"),
				progress: [li.querySelector("progress")?.value, li.querySelector("progress")?.max],
				caption: li.querySelector("[data-field=caption]")?.textContent ?? "",
				jobLink: li.querySelector("a")?.getAttribute("href") ?? "",
			})),
		);
		expect(uploads.map((u) => u.key).sort()).toEqual([`${prefix}shapes-on-white.png`, `${prefix}striped-sailboat.jpg`]);
		for (const upload of uploads) {
			expect(upload.progress[0]).toBe(upload.progress[1]);
			expect(upload.caption).toMatch(/Emulated caption/);
			expect(upload.caption).toContain("Décris les couleurs ✓");
		}
		expect(await textOf(".upload-view p[aria-live]")).toBe("2 of 2 uploaded · 2 captioned · 0 failed");
		await screenshot(page, "dashboard-03-upload");

		// The API has the same jobs, with the prompt, and the captions the page showed.
		const jobs = await listAllJobs(api, { prefix });
		expect(jobs.map((j) => j.status)).toEqual(["succeeded", "succeeded"]);
		for (const job of jobs) {
			expect(job.prompt).toBe("Décris les couleurs ✓");
			const shown = uploads.find((u) => u.key === job.key);
			expect(shown?.caption).toBe(job.caption);
			expect(shown?.jobLink).toBe(`#/jobs/${job.id}`);
		}
		expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
	});

	it("uploads an image dropped on the drop zone", async () => {
		// Outside the prefix the later steps count.
		const dropPrefix = `dashboard-${run}-dropped/`;
		await page.$eval("#upload-prefix", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.type("#upload-prefix", dropPrefix);
		const bytes = (await readFile(sample("sunset-over-hills.jpg"))).toString("base64");
		await page.evaluate((base64) => {
			const data = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
			const transfer = new DataTransfer();
			transfer.items.add(new File([data], "dropped.jpg", { type: "image/jpeg" }));
			const zone = document.getElementById("drop-zone");
			for (const type of ["dragenter", "dragover", "drop"]) {
				zone?.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
			}
		}, bytes);
		await page.waitForFunction(
			(key) => document.querySelector(`li.upload[data-key="${key}"]`)?.getAttribute("data-job-status") === "succeeded",
			{ timeout: 60_000, polling: 250 },
			`${dropPrefix}dropped.jpg`,
		);
		const [job] = await listAllJobs(api, { prefix: dropPrefix });
		expect(job).toMatchObject({ key: `${dropPrefix}dropped.jpg`, status: "succeeded" });
		expect(job?.caption).toContain("JPEG image, 640×480 pixels");
	});

	it("uploads with output tags, a language and a sidecar write-back; the job page lists the tags and the write-back", async () => {
		// Outside the prefix the later steps count.
		const tagsPrefix = `dashboard-${run}-tags/`;
		const key = `${tagsPrefix}striped-sailboat.jpg`;
		// The upload form offers every output kind and both write-back targets.
		const choices = (select: string) =>
			page.$$eval(`${select} option`, (options) => options.map((o) => (o as HTMLOptionElement).value));
		expect(await choices("#upload-output")).toEqual(["caption", "alt_text", "tags", "title"]);
		expect(await choices("#upload-write-back")).toEqual(["", "sidecar", "metadata"]);
		await page.$eval("#upload-prefix", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.type("#upload-prefix", tagsPrefix);
		await page.$eval("#upload-prompt", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.select("#upload-output", "tags");
		await page.type("#upload-language", "de");
		await page.select("#upload-write-back", "sidecar");
		const input = await page.$("input#upload-files");
		await input?.uploadFile(sample("striped-sailboat.jpg"));
		await page.waitForFunction(
			(k) => document.querySelector(`li.upload[data-key="${k}"]`)?.getAttribute("data-job-status") === "succeeded",
			{ timeout: 60_000, polling: 250 },
			key,
		);

		// The job page, opened as soon as the job succeeded, shows the write-back once it ends (no event says so).
		const [queued] = (await listAllJobs(api, { prefix: tagsPrefix })) as [Job];
		await page.click(`li.upload[data-key="${key}"] a[href="#/jobs/${queued.id}"]`);
		await page.waitForSelector(".job-view");
		await waitInPage("the written sidecar on the job page", () =>
			(document.querySelector(".job-view [data-field=write-back]")?.textContent ?? "").endsWith(": written"),
		);

		// The API ran what the form chose.
		const done = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: queued.id } } }));
		expect(done).toMatchObject({ key, status: "succeeded", output: "tags", language: "de" });
		expect(done.write_back).toEqual({ target: "sidecar", status: "written", error: null });
		const tags = done.result;
		if (!Array.isArray(tags)) throw new Error(`tags expected, got ${JSON.stringify(tags)}`);
		expect(tags.length).toBeGreaterThanOrEqual(1);
		expect(tags.length).toBeLessThanOrEqual(20);

		// The job page lists those tags, in the job's language.
		const shown = await page.$$eval(".job-view ul.tags[data-field=result] li", (items) =>
			items.map((li) => li.textContent),
		);
		expect(shown).toEqual(tags);
		expect(await page.$$eval(".job-view h2", (headings) => headings.map((el) => el.textContent))).toContain(
			"Result: tags (de)",
		);
		expect(await textOf(".job-view [data-field=write-back]")).toBe("Written back to sidecar: written");
		// The text form stays beside it: the tags joined, as the API's caption.
		expect(done.caption).toBe(tags.join(", "));
		expect(await textOf(".job-view [data-field=caption]")).toBe(done.caption);
		await screenshot(page, "dashboard-03b-tags-job");

		// The later uploads go back to plain captions.
		await open("upload");
		await page.select("#upload-output", "caption");
		await page.$eval("#upload-language", (el) => {
			(el as HTMLInputElement).value = "";
		});
		await page.select("#upload-write-back", "");
	});

	it("lists jobs newest first with thumbnails, and a new job appears and finishes without a reload", async () => {
		await open("jobs");
		// The list of this file's prefix: other files' jobs come and go on the shared stack.
		await filterJobs(prefix);
		await page.waitForSelector(`tr[data-job-id] img[src^="blob:"]`);
		const before = await page.$$eval("tr[data-job-id]", (rows) => rows.length);
		expect(before).toBe(2);

		// Another client uploads: the list picks it up on its own.
		const key = `${prefix}night-sky.webp`;
		const job = await uploadImage(api, key, new Blob([await readFile(sample("night-sky.webp"))]));
		await page.waitForFunction(
			(id) => {
				const top = document.querySelector("tr[data-job-id]");
				return top?.getAttribute("data-job-id") === id && top.getAttribute("data-status") === "succeeded";
			},
			{ timeout: 60_000, polling: 250 },
			job.id,
		);
		const top = await page.$eval("tr[data-job-id]", (tr) => ({
			id: tr.getAttribute("data-job-id"),
			key: tr.querySelector("[data-field=key]")?.textContent,
			caption: tr.querySelector("[data-field=caption]")?.textContent,
			thumbnail: tr.querySelector("img")?.getAttribute("src") ?? "",
		}));
		expect(top).toMatchObject({ id: job.id, key });
		expect(top.caption).toContain("WEBP image, 640×480 pixels");
		await page.waitForFunction(
			(id) => document.querySelector(`tr[data-job-id="${id}"] img`)?.getAttribute("src")?.startsWith("blob:"),
			{},
			job.id,
		);
		// The thumbnail is the API's preview, decoded by the browser.
		const thumbnailWidth = await page.$eval(
			`tr[data-job-id="${job.id}"] img`,
			(img) => (img as HTMLImageElement).naturalWidth,
		);
		expect(thumbnailWidth).toBeGreaterThan(0);
		expect(thumbnailWidth).toBeLessThanOrEqual(128);

		// Filters: the status filter narrows the list through the API (this prefix has no failed job;
		// other files' failed jobs are outside it).
		await page.select("#filter-status", "failed");
		await page.click(".filters button[type=submit]");
		await page.waitForFunction(
			(p) => location.hash === `#/jobs?status=failed&prefix=${encodeURIComponent(p)}`,
			{},
			prefix,
		);
		await waitInPage("the empty filtered list", () => document.querySelector(".empty:not([hidden])") !== null);
		// …and the prefix filter to the keys under it.
		await page.select("#filter-status", "");
		await page.$eval("#filter-prefix", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.type("#filter-prefix", `${prefix}night`);
		await page.click(".filters button[type=submit]");
		await page.waitForFunction(() => document.querySelectorAll("tr[data-job-id]").length === 1);
		expect(await textOf("tr[data-job-id] [data-field=key]")).toBe(key);
		await open("jobs");
		await page.waitForSelector("tr[data-job-id]");
		await screenshot(page, "dashboard-04-jobs");
		expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
	});

	it("asks no preview of a job whose object is no readable image, and shows a preview that does not decode as none", async () => {
		// Outside the prefix the later steps count: a damaged GIF (its header only) and a good image.
		const damagedPrefix = `dashboard-${run}-damaged/`;
		const damagedKey = `${damagedPrefix}header-only.gif`;
		const spoiltKey = `${damagedPrefix}shapes-on-white.png`;
		// Away from the jobs list while the jobs run: a row drawn before its job failed would ask for a preview.
		await open("upload");
		const damaged = await uploadImage(api, damagedKey, new Blob(["GIF89a"]));
		const spoilt = await uploadImage(api, spoiltKey, new Blob([await readFile(sample("shapes-on-white.png"))]));
		const finished = (id: string) =>
			until(`job ${id} to finish`, 60_000, async () => {
				const job = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
				return job.status === "succeeded" || job.status === "failed" ? job : undefined;
			});
		expect((await finished(damaged.id)).error?.code).toBe("invalid_image");
		expect((await finished(spoilt.id)).status).toBe("succeeded");

		// What the page asks for these objects' images, and any answer, failure or console error on the way.
		const asked: string[] = [];
		const problems: string[] = [];
		const imagePath = (url: string) => decodeURIComponent(new URL(url).pathname);
		const ours = (url: string) => imagePath(url).startsWith(`/v1/images/${damagedPrefix}`);
		const onRequest = (request: HTTPRequest) => {
			const wanted = imagePath(request.url());
			if (ours(request.url())) asked.push(wanted);
			// The good image's preview answered with bytes that do not decode, as a damaged original
			// sent in place of a preview would be.
			if (wanted === `/v1/images/${spoiltKey}`) {
				void request.respond({ status: 200, contentType: "image/webp", body: "GIF89a" });
			} else void request.continue();
		};
		const onResponse = (response: HTTPResponse) => {
			if (ours(response.url()) && response.status() >= 400) {
				problems.push(`${response.status()} ${imagePath(response.url())}`);
			}
		};
		const onFailed = (request: HTTPRequest) => {
			if (ours(request.url())) problems.push(`failed ${imagePath(request.url())}`);
		};
		const onConsole = (message: ConsoleMessage) => {
			if (message.type() === "error") problems.push(`console: ${message.text()}`);
		};
		await page.setRequestInterception(true);
		page.on("request", onRequest);
		page.on("response", onResponse);
		page.on("requestfailed", onFailed);
		page.on("console", onConsole);
		try {
			await showJobsUnder(damagedPrefix);
			await waitInPage(
				"both rows to show no preview",
				(ids) =>
					ids
						.split(" ")
						.every((id) => document.querySelector(`tr[data-job-id="${id}"] .thumb-cell .no-image`) !== null),
				15_000,
				`${damaged.id} ${spoilt.id}`,
			);
			await screenshot(page, "dashboard-04b-no-preview");
		} finally {
			page.off("request", onRequest);
			page.off("response", onResponse);
			page.off("requestfailed", onFailed);
			page.off("console", onConsole);
			await page.setRequestInterception(false);
		}
		// The damaged object's preview was never asked for; the other one's was, once.
		expect(asked).toEqual([`/v1/images/${spoiltKey}`]);
		expect(problems).toEqual([]);
		const cells = await page.$$eval("tr[data-job-id] .thumb-cell", (tds) =>
			tds.map((td) => ({ text: td.textContent, images: td.querySelectorAll("img").length })),
		);
		expect(cells).toEqual([
			{ text: "no preview", images: 0 },
			{ text: "no preview", images: 0 },
		]);
	});

	it("gets a finished job from the event stream within 2 s of its success, without fetching the list", async () => {
		// This file's jobs only (every key of this file starts so); other files' events still reach the page.
		await showJobsUnder(`dashboard-${run}`);
		await waitInPage("the event stream", () => document.querySelector("[data-live=live]") !== null, 30_000);
		// Wait for the load that follows the stream's opening, then count the list requests.
		await page.waitForSelector("tr[data-job-id]");
		let listRequests = 0;
		const count = (request: { url: () => string; method: () => string }) => {
			const url = new URL(request.url());
			if (request.method() === "GET" && url.pathname === "/v1/jobs") listRequests++;
		};
		await new Promise((resolve) => setTimeout(resolve, 1000));
		page.on("request", count);
		// Outside the prefix the batch test lists.
		const key = `dashboard-${run}-live/striped-sailboat.jpg`;
		const job = await uploadImage(api, key, new Blob([await readFile(sample("striped-sailboat.jpg"))]));
		await page.waitForFunction(
			(id) => document.querySelector(`tr[data-job-id="${id}"]`)?.getAttribute("data-status") === "succeeded",
			{ timeout: 60_000, polling: 50 },
			job.id,
		);
		const shownAt = Date.now();
		page.off("request", count);
		const finished = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
		expect(finished.status).toBe("succeeded");
		expect(shownAt - Date.parse(finished.completed_at ?? "")).toBeLessThan(2000);
		expect(listRequests).toBe(0);
		expect(await textOf(`tr[data-job-id="${job.id}"] [data-field=key]`)).toBe(key);
		// …and says so to a screen reader, in the page's live region.
		await page.waitForFunction(
			(said) => document.querySelector("#announcer[aria-live=polite]")?.textContent?.includes(said) === true,
			{ timeout: 10_000, polling: 100 },
			`${key}: succeeded`,
		);
	});

	it("opens a job page with the image, the caption, the timings and the job's webhook deliveries", async () => {
		const [job] = (await listAllJobs(api, { key: `${prefix}striped-sailboat.jpg` })) as [Job];
		await page.click(`tr[data-job-id="${job.id}"] [data-field=key]`);
		await page.waitForSelector(".job-view");
		expect(page.url()).toBe(`${stack.url}/#/jobs/${job.id}`);
		await page.waitForSelector(`.job-image img[src^="blob:"]`);
		expect(await page.$eval(".job-image img", (img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
		expect(await textOf(".caption-full")).toBe(job.caption);
		const details = await page.$eval(".job-info", (el) => (el as HTMLElement).innerText);
		expect(details).toContain("Inference");
		expect(details).toContain("Décris les couleurs ✓");
		expect(details).toContain(job.model?.replace("@cf/", "") ?? "no model");
		// Its delivery to the subscription: refused by the receiver (400), so failed after one attempt.
		await waitInPage(
			"the job's delivery",
			() => document.querySelector('.job-view tr[data-delivery-id][data-status="failed"]') !== null,
		);
		expect(await textOf(".job-view tr[data-delivery-id] .url-cell")).toBe(receiverUrl);
		await screenshot(page, "dashboard-05-job");
	});

	it("shows an object's caption versions newest first, and saves a caption typed into the edit box as the current human version", async () => {
		// Outside the prefix the later steps count: one object captioned twice by the model.
		const key = `dashboard-${run}-history/shapes-on-white.png`;
		const first = await uploadImage(api, key, new Blob([await readFile(sample("shapes-on-white.png"))]));
		const succeeded = (id: string) =>
			until(`job ${id} to succeed`, 60_000, async () => {
				const job = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
				return job.status === "succeeded" ? job : undefined;
			});
		await succeeded(first.id);
		const again = await ok(api.POST("/v1/jobs", { body: { key, prompt: "Name the shapes" } }));
		const second = await succeeded(again.id);

		await page.evaluate((id) => {
			location.hash = `#/jobs/${id}`;
		}, second.id);
		await waitInPage("the two versions", () => document.querySelectorAll(".caption-history li").length === 2);
		const versions = () =>
			page.$$eval(".caption-history li", (items) =>
				items.map((li) => ({
					version: li.getAttribute("data-version"),
					source: li.getAttribute("data-source"),
					current: li.getAttribute("data-current") === "true",
					text: li.querySelector(".caption-full")?.textContent ?? "",
				})),
			);
		const before = await versions();
		expect(before.map((v) => [v.version, v.source, v.current])).toEqual([
			["2", "ai", true],
			["1", "ai", false],
		]);
		expect(before[0]?.text).toBe(second.caption);
		expect(before[0]?.text).toContain("Name the shapes");
		// The job's details: the tokens its model call reported.
		const usage = second.usage;
		if (!usage) throw new Error("moondream's job without usage");
		expect(await page.$eval(".job-info", (el) => (el as HTMLElement).innerText)).toContain(
			`${usage.input_tokens} input, ${usage.output_tokens} output`,
		);
		await screenshot(page, "dashboard-05c-caption-history");

		const typed = `Three shapes on white, written by hand ${run}`;
		await page.$eval("#caption-edit", (el) => {
			(el as HTMLTextAreaElement).value = "";
		});
		await page.type("#caption-edit", typed);
		await page.click(".caption-edit button[type=submit]");
		await waitInPage("the saved version", () => document.querySelectorAll(".caption-history li").length === 3);
		const after = await versions();
		expect(after.map((v) => [v.version, v.source, v.current])).toEqual([
			["3", "human", true],
			["2", "ai", false],
			["1", "ai", false],
		]);
		expect(after[0]?.text).toBe(typed);
		expect(await textOf(".caption-history li[data-current]")).toContain("by hand");
		expect(await page.$eval("#caption-edit-error", (el) => (el as HTMLElement).hidden)).toBe(true);
		await screenshot(page, "dashboard-05d-caption-saved");

		// The API holds the version the page wrote, current and a person's.
		const caption = await ok(api.GET("/v1/captions/{key}", { params: { path: { key } } }));
		expect(caption).toMatchObject({ key, text: typed, source: "human", job_id: null, model: null, versions: 3 });
		expect(caption.history.map((v) => [v.version, v.source])).toEqual([
			[3, "human"],
			[2, "ai"],
			[1, "ai"],
		]);
	});

	it("shows a caption containing markup as literal text, in the job list and on the job page", async () => {
		// The emulator's caption repeats the prompt, so the markup reaches the caption as a model's answer could.
		const markup = '<marquee id="injected">bold</marquee><img src="x" id="injected-img">';
		const key = `dashboard-${run}-markup/shapes.png`;
		const queued = await uploadImage(api, key, new Blob([await readFile(sample("shapes-on-white.png"))]), {
			prompt: markup,
		});
		const job = await until("the markup job to be captioned", 60_000, async () => {
			const current = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: queued.id } } }));
			return current.status === "succeeded" ? current : undefined;
		});
		expect(job.caption).toContain(markup);
		const injected = () => document.querySelector("#injected, #injected-img, marquee") !== null;

		await showJobsUnder(`dashboard-${run}-markup/`);
		const cell = `tr[data-job-id="${job.id}"] [data-field=caption]`;
		await page.waitForSelector(cell, { timeout: 60_000 });
		expect(await textOf(cell)).toBe(job.caption);
		expect(await page.$eval(cell, (el) => el.childElementCount)).toBe(0);
		expect(await page.evaluate(injected)).toBe(false);

		await page.evaluate((id) => {
			location.hash = `#/jobs/${id}`;
		}, job.id);
		await page.waitForSelector(".job-view .caption-full");
		expect(await textOf(".caption-full")).toBe(job.caption);
		expect(await page.$eval(".caption-full", (el) => el.childElementCount)).toBe(0);
		expect(await page.evaluate(injected)).toBe(false);
		await screenshot(page, "dashboard-05b-markup-caption");
	});

	it("redelivers a failed webhook delivery from the subscription's delivery log", async () => {
		// A subscription deleted from the keyboard: its row goes, focus stays in the list (its heading).
		const doomed = await ok(
			api.POST("/v1/webhooks", {
				body: { url: `${receiverUrl}/doomed`, events: ["job.failed"], prefix: `${prefix}none/` },
			}),
		);
		await open("webhooks");
		const deleteButton = `tr[data-webhook-id="${doomed.id}"] button[aria-label="Delete the subscription to ${doomed.url}"]`;
		await page.waitForSelector(deleteButton);
		await page.focus(deleteButton);
		page.once("dialog", (dialog) => void dialog.accept());
		await page.keyboard.press("Enter");
		await focusOn("#subs-title");
		expect(await page.$(`tr[data-webhook-id="${doomed.id}"]`)).toBeNull();
		// The admin sees every file's subscriptions: this file's is the one made for its prefix.
		const subscriptionRow = `tr[data-webhook-id="${subscriptionId}"]`;
		await page.waitForSelector(`${subscriptionRow} a.button`);
		expect(await textOf(`${subscriptionRow} .url-cell`)).toBe(receiverUrl);
		await page.click(`${subscriptionRow} a.button`);
		await page.waitForSelector("tr[data-delivery-id]");
		const target = await page.$eval('tr[data-delivery-id][data-status="failed"]', (tr) =>
			tr.getAttribute("data-delivery-id"),
		);
		expect(received.filter((r) => r.webhookId === target)).toHaveLength(1);
		expect(await accessibilityProblems()).toEqual([]);

		await page.click(`tr[data-delivery-id="${target}"] button`);
		await page.waitForFunction(
			(id) => document.querySelector(`tr[data-delivery-id="${id}"]`)?.getAttribute("data-status") === "succeeded",
			{ timeout: 30_000 },
			target,
		);
		// Focus stayed on the row's button (Sending…, then Redeliver again), not thrown back to the page's body.
		await focusOn(`tr[data-delivery-id="${target}"] button`);
		// The receiver got the same webhook-id again, and the log shows both attempts.
		expect(received.filter((r) => r.webhookId === target)).toHaveLength(2);
		expect(await textOf(`tr[data-delivery-id="${target}"] summary`)).toBe("2 attempts");
		await screenshot(page, "dashboard-06-webhooks");
	});

	it("draws throughput and inference-time charts from the API's statistics", async () => {
		await open("stats");
		await page.waitForSelector("#chart-throughput svg rect");
		const bars = await page.$$eval("#chart-throughput svg rect", (rects) => rects.length);
		expect(bars).toBeGreaterThan(0);
		expect(await page.$$eval("#chart-inference-time svg path.line", (paths) => paths.length)).toBe(3);
		// The lanes (the admin's only): one row per lane and rate limit the scheduler has paced, as the API
		// reports them. Another file's job may pace a new limit at any time; the page reads the stats
		// again when its event comes, so it shows the API's lanes within a few seconds.
		const lanes = (await ok(api.GET("/v1/stats"))).lanes ?? [];
		expect(lanes.find((l) => l.lane === "interactive" && l.task_type === "Image-to-Text")).toBeDefined();
		await page.waitForSelector('.lanes-table tr[data-lane="interactive/Image-to-Text"]');
		const lanesNow = async () => ({
			shown: (
				await page.$$eval(".lanes-table tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-lane")))
			).sort(),
			api: ((await ok(api.GET("/v1/stats"))).lanes ?? []).map((l) => `${l.lane}/${l.task_type}`).sort(),
		});
		const sameLanes = await until("the page's lanes to be the API's", 30_000, async () => {
			const now = await lanesNow();
			return JSON.stringify(now.shown) === JSON.stringify(now.api) ? now : undefined;
		}).catch(lanesNow);
		expect(sameLanes.shown).toEqual(sameLanes.api);
		expect(await textOf('tr[data-lane="interactive/Image-to-Text"] [data-field="share"]')).toMatch(/^\s*\d+ %$/);
		await screenshot(page, "dashboard-07-stats");

		// The figures, as a key limited to this file's prefix sees them: the service-wide ones change
		// whenever another file's job finishes; under the prefix nothing runs now (its three jobs
		// succeeded). In a tab of its own (sessionStorage is per tab): this one keeps the admin's
		// session and its uploads.
		const statsKey = await ok(api.POST("/v1/keys", { body: { prefix, name: "dashboard stats" } }));
		const scoped = createR2cClient({ baseUrl: stack.url, token: statsKey.token });
		const tab = await chrome.browser.newPage();
		const tabErrors = collectErrors(tab);
		try {
			await tab.setViewport({ width: 1280, height: 900 });
			await tab.goto(`${stack.url}/#/stats`, { waitUntil: "load" });
			await tab.waitForSelector("#token");
			await signIn(statsKey.token, tab);
			await tab.waitForSelector(".stats-view #chart-throughput svg rect");
			expect(await textOf("#who", tab)).toBe(`Objects under ${prefix}`);
			const series = await ok(scoped.GET("/v1/stats/series", { params: { query: { window: "1h" } } }));
			const completed = series.points.reduce((sum, p) => sum + p.completed, 0);
			expect(completed).toBe(3);
			expect(await textOf("#chart-throughput figcaption p", tab)).toContain(
				`${completed} jobs finished over the last hour`,
			);
			const stats = await ok(scoped.GET("/v1/stats"));
			expect(stats.counts.succeeded).toBe(3);
			expect(await textOf('[data-count="succeeded"]', tab)).toBe(String(stats.counts.succeeded));
			await screenshot(tab, "dashboard-07b-stats-of-prefix");
			expect(tabErrors).toEqual([]);
		} finally {
			await tab.close();
		}
	});

	it("creates a prefix batch, follows its progress to 100 % and downloads its exports", async () => {
		await open("batches");
		await page.waitForSelector("#batch-prefix");
		await page.$eval("#batch-prefix", (input) => {
			(input as HTMLInputElement).value = "";
		});
		await page.type("#batch-prefix", prefix);
		await page.type("#batch-prompt", "A short alt text");
		// The admin's list has every file's batches: this file's is the one the form made.
		const id = await createdBatch(() => page.click(".batches-view form button[type=submit]"));
		const row = `tr[data-batch-id="${id}"]`;
		await page.waitForSelector(row);
		expect(await textOf(`${row} td:nth-child(3)`)).toBe(prefix);
		await waitInPage(
			"the batch to complete",
			(batchRow) =>
				document.querySelector(batchRow)?.getAttribute("data-status") === "completed" &&
				document.querySelector(`${batchRow} [data-field=progress]`)?.textContent === "100 %",
			90_000,
			row,
		);
		const batch = await ok(api.GET("/v1/batches/{id}", { params: { path: { id } } }));
		expect(batch).toMatchObject({ prefix, status: "completed", prompt: "A short alt text" });
		expect(batch.counts.total).toBe(3);
		expect(batch.counts.succeeded + batch.counts.skipped).toBe(3);
		expect(await page.$eval(`${row} progress`, (p) => (p as HTMLProgressElement).value)).toBe(100);
		await screenshot(page, "dashboard-08-batches");

		// The exports download with the token, under the names the API gives them.
		const downloads = mkdtempSync(path.join(tmpdir(), "r2-captions-downloads-"));
		const cdp = await page.createCDPSession();
		await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
		const downloaded = async (file: string) =>
			until(`the download ${file}`, 15_000, async () =>
				existsSync(path.join(downloads, file)) ? readFile(path.join(downloads, file), "utf8") : undefined,
			);
		await page.click(`button[aria-label="Download CSV of ${id}"]`);
		const csv = (await downloaded(`${id}.csv`)).trim().split("\r\n");
		expect(csv[0]).toBe("key,status,caption,error_code,error_message,model,prompt,completed_at");
		expect(csv).toHaveLength(4);
		await page.click(`button[aria-label="Download HF metadata of ${id}"]`);
		const metadata = (await downloaded("metadata.jsonl"))
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line) as { file_name: string; text: string });
		expect(metadata.map((m) => m.file_name).sort()).toEqual([
			"night-sky.webp",
			"shapes-on-white.png",
			"striped-sailboat.jpg",
		]);
		rmSync(downloads, { recursive: true, force: true });
	});

	it("plans a dry-run batch from the form, shows its plan, and runs it to completion with Start", async () => {
		// Three objects, one already captioned with the batch's prompt (skipped), two with another.
		const planPrefix = `dashboard-${run}-plan/`;
		const prompt = "Plan this caption";
		const uploads = [
			["sunset-over-hills.jpg", prompt],
			["night-sky.webp", undefined],
			["striped-sailboat.jpg", undefined],
		] as const;
		for (const [name, withPrompt] of uploads) {
			const job = await uploadImage(api, `${planPrefix}${name}`, new Blob([await readFile(sample(name))]), {
				...(withPrompt ? { prompt: withPrompt } : {}),
			});
			await until(`the upload of ${name} to be captioned`, 60_000, async () => {
				const current = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
				return current.status === "succeeded" ? current : undefined;
			});
		}

		await open("batches");
		await page.waitForSelector("#batch-prefix");
		for (const input of ["#batch-prefix", "#batch-prompt"]) {
			await page.$eval(input, (el) => {
				(el as HTMLInputElement).value = "";
			});
		}
		await page.type("#batch-prefix", planPrefix);
		await page.type("#batch-prompt", prompt);
		expect(await page.$eval("#batch-skip", (el) => (el as HTMLInputElement).checked)).toBe(true);
		await page.click("#batch-dry-run");
		const id = await createdBatch(() => page.click(".batches-view form button[type=submit]"));
		const row = `tr[data-batch-id="${id}"][data-status="planned"]`;
		await waitInPage(
			"the planned batch",
			(plannedRow) => document.querySelector(`${plannedRow} [data-field=estimate]`) !== null,
			60_000,
			row,
		);
		const planned = await ok(api.GET("/v1/batches/{id}", { params: { path: { id } } }));
		expect(planned).toMatchObject({ prefix: planPrefix, prompt, status: "planned" });
		expect(planned.counts).toMatchObject({ total: 3, skipped: 1, missing: 0, queued: 0, succeeded: 0 });
		const estimate = planned.estimate;
		if (!estimate) throw new Error("a planned batch without an estimate");
		expect(estimate.model_calls).toBe(2);
		// The plan as the page shows it: the counts and the API's estimate.
		expect(await textOf(`${row} [data-field=plan]`)).toBe("3 objects: 1 skipped, 0 missing, 2 to caption");
		expect(await textOf(`${row} [data-field=estimate]`)).toBe(
			`2 model calls, ${estimate.minutes_at_rate_limit} min at the rate limit, $${estimate.usd?.toFixed(4)}`,
		);
		await screenshot(page, "dashboard-08b-batch-plan");

		await page.click(`button[aria-label="Start ${id}"]`);
		// The Start button goes once the batch runs: focus stays on the batch's row, on its Jobs link.
		await focusOn(`tr[data-batch-id="${id}"] a[aria-label="Jobs of ${id}"]`, 30_000);
		await page.waitForFunction(
			(batchId) => {
				const tr = document.querySelector(`tr[data-batch-id="${batchId}"]`);
				return (
					tr?.getAttribute("data-status") === "completed" &&
					tr.querySelector("[data-field=progress]")?.textContent === "100 %"
				);
			},
			{ timeout: 90_000, polling: 250 },
			id,
		);
		const done = await ok(api.GET("/v1/batches/{id}", { params: { path: { id } } }));
		expect(done.status).toBe("completed");
		expect(done.counts.total).toBe(3);
		expect(done.counts.succeeded + done.counts.failed).toBe(done.counts.total - done.counts.skipped);
		expect(done.counts).toMatchObject({ succeeded: 2, skipped: 1, failed: 0 });
		// Its jobs are the two objects the plan counted, with the batch's prompt.
		const jobs = await listAllJobs(api, { prefix: planPrefix });
		const ofBatch = jobs.filter((j) => j.batch_id === id);
		expect(ofBatch.map((j) => j.key).sort()).toEqual([
			`${planPrefix}night-sky.webp`,
			`${planPrefix}striped-sailboat.jpg`,
		]);
		expect(ofBatch.every((j) => j.prompt === prompt && j.status === "succeeded")).toBe(true);
		// The tokens they reported, on the batch's row beside its counts.
		expect(done.usage.jobs_with_usage).toBe(2);
		expect(await textOf(`tr[data-batch-id="${id}"] [data-field=usage]`)).toBe(
			`${done.usage.input_tokens} input, ${done.usage.output_tokens} output tokens`,
		);
		await screenshot(page, "dashboard-08c-batch-planned-done");
	});

	it("fits a phone (390 px) and 800 px: no sideways scroll outside tables, object keys wrap at /", async () => {
		const key = `${prefix}customers/acme-corporation-international/catalogue/2026/spring-collection/product-photography-very-long-file-name.jpg`;
		const queued = await uploadImage(api, key, new Blob([await readFile(sample("night-sky.webp"))]));
		await until("the long key's job to be captioned", 60_000, async () => {
			const current = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: queued.id } } }));
			return current.status === "succeeded" ? current : undefined;
		});
		// The jobs of this file's prefix (other files' jobs would push the long key off the first page);
		// the admin's batches, subscriptions and figures are every file's.
		const views: [string, string][] = [
			[jobsUnder(prefix).slice(2), `tr[data-job-id="${queued.id}"]`],
			[`jobs/${queued.id}`, ".job-info .details dd code"],
			["upload", ".upload-view .drop-zone"],
			["batches", ".batches-view table"],
			["webhooks", ".webhooks-view table"],
			["stats", ".stats-view .chart"],
		];
		for (const width of [390, 800]) {
			await page.setViewport({ width, height: 844 });
			for (const [view, ready] of views) {
				await page.evaluate((hash) => {
					location.hash = hash;
				}, `#/${view}`);
				await page.waitForSelector(ready);
				const layout = await page.evaluate(() => {
					const limit = document.documentElement.clientWidth;
					// Anything reaching past the window's right edge, except inside a table that scrolls on its own.
					const overflowing = Array.from(document.querySelectorAll("body *"))
						.filter((el) => el.getBoundingClientRect().right > limit + 1 && !el.closest(".table-wrap"))
						.map((el) => `${el.tagName.toLowerCase()}.${el.className}`);
					// The lines each shown object key is laid out in, read character by character.
					const keyLines = Array.from(
						document.querySelectorAll("[data-field=key], .job-info .details dd code, .job-image figcaption code"),
					)
						.filter((el) => (el.textContent ?? "").includes("spring-collection"))
						.map((el) => {
							const lines: { text: string; top: number; right: number }[] = [];
							const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
							for (let node = walker.nextNode(); node; node = walker.nextNode()) {
								for (let i = 0; i < (node.textContent ?? "").length; i++) {
									const range = document.createRange();
									range.setStart(node, i);
									range.setEnd(node, i + 1);
									const box = range.getBoundingClientRect();
									const last = lines.at(-1);
									if (last && Math.abs(box.top - last.top) < 2) {
										last.text += node.textContent?.[i] ?? "";
										last.right = box.right;
									} else lines.push({ text: node.textContent?.[i] ?? "", top: box.top, right: box.right });
								}
							}
							const box = el.getBoundingClientRect();
							return { width: box.width, left: box.left, lines };
						});
					return { scrollWidth: document.documentElement.scrollWidth, limit, overflowing, keyLines };
				});
				await screenshot(page, `dashboard-fit-${width}-${view.split(/[/?]/)[0]}`);
				const where = `${view} at ${width} px`;
				expect(await accessibilityProblems(), where).toEqual([]);
				expect(layout.scrollWidth, where).toBeLessThanOrEqual(layout.limit);
				expect(layout.overflowing, where).toEqual([]);
				if (view.startsWith("jobs")) expect(layout.keyLines.length, where).toBeGreaterThan(0);
				for (const shown of layout.keyLines) {
					const segments = key.split("/").length;
					// Readable: a line ends at a "/" (or a word's "-"), or where a segment alone fills it.
					expect(shown.lines.length, where).toBeLessThanOrEqual(2 * segments);
					for (const line of shown.lines.slice(0, -1)) {
						const full = line.right - shown.left >= 0.75 * shown.width;
						expect(/[/-]$/.test(line.text) || full, `${where}: "${line.text}"`).toBe(true);
					}
				}
			}
		}
		await page.setViewport({ width: 1280, height: 900 });
	});

	it("signed in with a key scoped to a prefix, shows only the jobs under it", async () => {
		const scope = `${prefix}team/`;
		const key = await ok(api.POST("/v1/keys", { body: { prefix: scope, name: "dashboard test" } }));
		const inside = await uploadImage(
			api,
			`${scope}sunset.jpg`,
			new Blob([await readFile(sample("sunset-over-hills.jpg"))]),
		);
		const [outside] = (await listAllJobs(api, { key: `${prefix}striped-sailboat.jpg` })) as [Job];

		await page.click("#sign-out");
		await page.waitForSelector("#token");
		expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
		// The tab no longer names the view that was left.
		expect(await page.title()).toBe("Sign in · r2-captions");
		await signIn(key.token);
		// Signing in keeps the page the address names (here the stats); the jobs are a click away.
		await page.waitForSelector("#nav:not([hidden])");
		await open("jobs");
		await page.waitForSelector(".jobs-view");
		expect(await textOf("#who")).toBe(`Objects under ${scope}`);
		await page.waitForSelector(`tr[data-job-id="${inside.id}"]`);
		const keys = await page.$$eval("tr[data-job-id] [data-field=key]", (links) =>
			links.map((a) => a.textContent ?? ""),
		);
		expect(keys.length).toBeGreaterThan(0);
		expect(keys.every((k) => k.startsWith(scope))).toBe(true);
		await screenshot(page, "dashboard-09-scoped-jobs");

		// Another prefix's job does not exist for this key.
		await page.evaluate((id) => {
			location.hash = `#/jobs/${id}`;
		}, outside.id);
		await page.waitForSelector("#job-problem:not([hidden])");
		expect(await textOf("#job-problem")).toContain(`There is no job ${outside.id}`);
		await screenshot(page, "dashboard-10-scoped-job-elsewhere");
		// An address that is not valid percent-encoding names no page (and throws nothing).
		await page.evaluate(() => {
			location.hash = "#/jobs/%E0";
		});
		await page.waitForFunction(() => document.querySelector("#view-title")?.textContent === "Not found");
		expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
	});

	it("ran without a script error or a Content-Security-Policy violation", () => {
		// The 401 of the wrong token and the 404 of the other prefix's job are the API's answers, not errors of the page.
		// So is a 415 for the thumbnail of another file's object that no preview can be made of (cli.test.ts's
		// truncated JPEG, before its job has failed: a failed one is not asked for), which the lists of every
		// file's jobs (the admin's first page) may show; never one for this file's objects, or for anything
		// but a preview.
		const theirs = unpreviewable.filter(
			(p) => p.startsWith("/v1/images/") && !p.startsWith(`/v1/images/dashboard-${run}`),
		);
		expect(unpreviewable).toEqual(theirs);
		expect(errors.filter((e) => /status of 415/.test(e)).length).toBeLessThanOrEqual(theirs.length);
		const unexpected = errors.filter((e) => !/status of (401|404|415)/.test(e));
		expect(unexpected).toEqual([]);
	});

	// Last: the refused stream is logged as a failed request, which the check above would count.
	it("polls the list, and says so on the page, when the event stream cannot be opened", async () => {
		await page.setRequestInterception(true);
		const refuseStream = (request: HTTPRequest) => {
			// An answer that is not a stream: EventSource gives up (a dropped connection it retries itself).
			if (new URL(request.url()).pathname === "/v1/events") void request.respond({ status: 503, body: "" });
			else void request.continue();
		};
		let listRequests = 0;
		const count = (request: HTTPRequest) => {
			if (request.method() === "GET" && new URL(request.url()).pathname === "/v1/jobs") listRequests++;
		};
		page.on("request", refuseStream);
		try {
			await page.reload({ waitUntil: "load" });
			await page.waitForSelector("#nav:not([hidden])");
			await open("jobs");
			await waitInPage("the polling note", () => document.querySelector("[data-live=polling]") !== null, 30_000);
			expect(await textOf("[data-live=polling]")).toMatch(
				/^The event stream could not be opened: polling every \d+ s\.$/,
			);
			page.on("request", count);
			await until("two list requests while polling", 30_000, async () => (listRequests >= 2 ? true : undefined));
		} finally {
			page.off("request", count);
			page.off("request", refuseStream);
			await page.setRequestInterception(false);
		}
	});
});
