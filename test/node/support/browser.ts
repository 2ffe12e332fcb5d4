/**
 * A real browser for the dashboard tests: headless Chromium from `@sparticuz/chromium` (the
 * browser ships inside the npm package, so nothing is downloaded at install or run time) driven
 * by `puppeteer-core`. On macOS and Windows, where that build does not run, set `CHROME_PATH` to
 * an installed Chrome. The flags suit root and a closed network: no sandbox, no GPU, and none of
 * Chromium's background connections. Screenshots go to test-results/screenshots/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import chromium from "@sparticuz/chromium";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { root } from "../../../scripts/lib/wrangler.ts";

export const screenshotDir = path.join(root, "test-results/screenshots");

async function executablePath(): Promise<string> {
	if (process.env.CHROME_PATH) return process.env.CHROME_PATH;
	if (process.platform !== "linux") {
		throw new Error("The dashboard tests need a Chrome: set CHROME_PATH to an installed Chrome or Chromium");
	}
	return chromium.executablePath();
}

export interface TestBrowser {
	browser: Browser;
	close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
	const profile = mkdtempSync(path.join(tmpdir(), "r2-captions-chromium-"));
	const browser = await puppeteer.launch({
		executablePath: await executablePath(),
		headless: true,
		args: [
			"--no-sandbox",
			"--disable-gpu",
			"--no-first-run",
			"--no-default-browser-check",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			"--disable-dev-shm-usage",
			`--user-data-dir=${profile}`,
		],
	});
	return {
		browser,
		async close() {
			await browser.close();
			rmSync(profile, { recursive: true, force: true });
		},
	};
}

/** Saves a full-page screenshot as test-results/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
	mkdirSync(screenshotDir, { recursive: true });
	const file = path.join(screenshotDir, `${name}.png`);
	await page.screenshot({ path: file as `${string}.png`, fullPage: true });
	return file;
}

/** Page errors and console errors (CSP violations among them), so a test can assert there were none. */
export function collectErrors(page: Page): string[] {
	const errors: string[] = [];
	page.on("pageerror", (err) => errors.push(`pageerror: ${err instanceof Error ? err.message : String(err)}`));
	page.on("console", (message) => {
		if (message.type() === "error") errors.push(`console: ${message.text()}`);
	});
	return errors;
}
