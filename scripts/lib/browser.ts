/**
 * A real browser for the dashboard tests and the benchmark: headless Chromium from
 * `@sparticuz/chromium` (the browser ships inside the npm package, so nothing is downloaded at
 * install or run time) driven by `puppeteer-core`. On macOS and Windows, where that build does not
 * run, set `CHROME_PATH` to an installed Chrome. The flags suit root and a closed network: no
 * sandbox, no GPU, none of Chromium's background connections, a temporary profile.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import chromium from "@sparticuz/chromium";
import puppeteer, { type Browser } from "puppeteer-core";

async function executablePath(): Promise<string> {
	if (process.env.CHROME_PATH) return process.env.CHROME_PATH;
	if (process.platform !== "linux") {
		throw new Error("The dashboard tests need a Chrome: set CHROME_PATH to an installed Chrome or Chromium");
	}
	return chromium.executablePath();
}

export interface LaunchedBrowser {
	browser: Browser;
	close(): Promise<void>;
}

export async function launchBrowser(): Promise<LaunchedBrowser> {
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
