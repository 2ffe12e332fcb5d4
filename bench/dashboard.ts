/**
 * The dashboard's first render on the local stack (target: under a second), in headless
 * Chromium (scripts/lib/browser.ts). With a page of captioned jobs in the stack, each run opens
 * the page in a fresh browser context (empty cache) and measures, from the start of navigation:
 *
 * - sign-in: the sign-in form's first contentful paint (no token yet);
 * - jobs: signed in (the token already in sessionStorage, as after a reload), the jobs table with
 *   its first page of rows, and then with every thumbnail decoded;
 *
 * then the same once more in the same context (warm: the browser's cache revalidates with ETags).
 */
import type { Page } from "puppeteer-core";
import { uploadImage } from "../client/index.ts";
import { launchBrowser } from "../scripts/lib/browser.ts";
import { api, waitUntilTerminal } from "./pipeline.ts";
import type { Stack } from "./stack.ts";
import { percentile, round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

export interface DashboardResult {
	jobs: number;
	runs: number;
	/** Medians over the runs, in ms from the start of navigation. */
	cold: { signInPaintMs: number; jobsRowsMs: number; jobsThumbnailsMs: number };
	warm: { signInPaintMs: number; jobsRowsMs: number; jobsThumbnailsMs: number };
	/** Worst run, cold. */
	coldMax: { signInPaintMs: number; jobsRowsMs: number; jobsThumbnailsMs: number };
}

type Sample = { signInPaintMs: number; jobsRowsMs: number; jobsThumbnailsMs: number };

const TOKEN_KEY = "r2-captions.token";

/**
 * Runs in the page before its own scripts (it is code for the browser, hence a string): puts the
 * token in sessionStorage on the jobs page only, and records when the table first has `jobs` rows
 * and when their thumbnails are all decoded, in ms since the navigation started.
 */
const probe = (token: string, jobs: number) => `
	if (location.protocol !== "about:") {
		if (location.hash) sessionStorage.setItem(${JSON.stringify(TOKEN_KEY)}, ${JSON.stringify(token)});
		else sessionStorage.removeItem(${JSON.stringify(TOKEN_KEY)});
		window.__marks = {};
		const check = () => {
			const rows = document.querySelectorAll("tr[data-job-id]");
			if (!window.__marks.rows && rows.length >= ${jobs}) window.__marks.rows = performance.now();
			const shown = Array.from(document.querySelectorAll("tr[data-job-id] img"))
				.filter((img) => img.complete && img.naturalWidth > 0).length;
			if (!window.__marks.thumbs && shown >= ${jobs}) window.__marks.thumbs = performance.now();
		};
		new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true });
		document.addEventListener("load", check, true);
	}
`;

async function sample(page: Page, url: string): Promise<Sample> {
	await page.goto(`${url}/`, { waitUntil: "load" });
	await page.waitForSelector("#token");
	const paint = Number(
		await page.evaluate(`performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? performance.now()`),
	);
	// A new document (not a fragment change), so the page loads again from the start.
	await page.goto("about:blank");
	await page.goto(`${url}/#/jobs`, { waitUntil: "domcontentloaded" });
	await page.waitForFunction("window.__marks && window.__marks.thumbs", { timeout: 30_000 });
	const marks = (await page.evaluate("window.__marks")) as { rows: number; thumbs: number };
	return { signInPaintMs: paint, jobsRowsMs: marks.rows, jobsThumbnailsMs: marks.thumbs };
}

const median = (samples: Sample[], key: keyof Sample) =>
	round(
		percentile(
			samples.map((s) => s[key]),
			50,
		),
		0,
	);
const max = (samples: Sample[], key: keyof Sample) => round(Math.max(...samples.map((s) => s[key])), 0);

export async function runDashboard(
	stack: Stack,
	images: WorkloadImage[],
	options: { jobs: number; runs: number; log: (line: string) => void },
): Promise<DashboardResult> {
	const client = api(stack);
	for (let i = 0; i < options.jobs; i++) {
		const image = images[i % images.length] as WorkloadImage;
		await uploadImage(client, `dashboard/${String(i).padStart(3, "0")}-${image.name}`, new Blob([image.bytes]));
	}
	if (!(await waitUntilTerminal(stack, 120_000))) throw new Error("the dashboard's jobs did not finish");

	const { browser, close } = await launchBrowser();
	const cold: Sample[] = [];
	const warm: Sample[] = [];
	try {
		for (let run = 0; run < options.runs; run++) {
			const context = await browser.createBrowserContext();
			const page = await context.newPage();
			await page.setViewport({ width: 1280, height: 900 });
			await page.evaluateOnNewDocument(probe(stack.token, options.jobs));
			cold.push(await sample(page, stack.url));
			warm.push(await sample(page, stack.url));
			await context.close();
			options.log(
				`  run ${run + 1}: sign-in ${round(cold.at(-1)?.signInPaintMs ?? 0, 0)} ms, jobs ${round(cold.at(-1)?.jobsRowsMs ?? 0, 0)} ms cold / ${round(warm.at(-1)?.jobsRowsMs ?? 0, 0)} ms warm`,
			);
		}
	} finally {
		await close();
	}
	const pick = (samples: Sample[], f: typeof median) => ({
		signInPaintMs: f(samples, "signInPaintMs"),
		jobsRowsMs: f(samples, "jobsRowsMs"),
		jobsThumbnailsMs: f(samples, "jobsThumbnailsMs"),
	});
	return {
		jobs: options.jobs,
		runs: options.runs,
		cold: pick(cold, median),
		warm: pick(warm, median),
		coldMax: pick(cold, max),
	};
}
