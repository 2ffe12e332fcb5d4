/**
 * The dashboard tests' browser (scripts/lib/browser.ts: headless Chromium from @sparticuz/chromium,
 * or CHROME_PATH), with screenshots to test-results/screenshots/ (git-ignored) and a collector of
 * the page's script errors and console errors (CSP violations among them).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "puppeteer-core";
import { root } from "../../../scripts/lib/wrangler.ts";

export { type LaunchedBrowser as TestBrowser, launchBrowser } from "../../../scripts/lib/browser.ts";

export const screenshotDir = path.join(root, "test-results/screenshots");

/**
 * Saves a full-page screenshot as test-results/screenshots/<name>.png when SCREENSHOTS is set
 * (`SCREENSHOTS=1 npx vitest run test/node/dashboard.test.ts`); returns the file, or null when
 * none was taken. Encoding a full page as PNG costs Chromium a few tenths of a CPU-second each, and
 * the dashboard test takes about thirty: the whole suite skips them unless asked.
 */
export async function screenshot(page: Page, name: string): Promise<string | null> {
	if (!process.env.SCREENSHOTS) return null;
	return saveScreenshot(page, name);
}

/** Saves a full-page screenshot as test-results/screenshots/<name>.png, whatever SCREENSHOTS says. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
	mkdirSync(screenshotDir, { recursive: true });
	const file = path.join(screenshotDir, `${name}.png`);
	await page.screenshot({ path: file as `${string}.png`, fullPage: true });
	return file;
}

/** Page errors and console errors, so a test can assert there were none. */
export function collectErrors(page: Page): string[] {
	const errors: string[] = [];
	page.on("pageerror", (err) => errors.push(`pageerror: ${err instanceof Error ? err.message : String(err)}`));
	page.on("console", (message) => {
		if (message.type() === "error") errors.push(`console: ${message.text()}`);
	});
	return errors;
}
