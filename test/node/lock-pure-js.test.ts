/**
 * The `r2c` command, the typed client and their generator, and the browser tests' driver, must
 * install the same way on macOS, Windows and Linux: their packages, and everything those pull in,
 * are plain JavaScript with no per-platform package and no install script (nothing the lock would
 * need per-platform entries for, nothing that downloads at install time).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

interface LockEntry {
	dev?: boolean;
	version?: string;
	dependencies?: Record<string, string>;
	optionalDependencies?: Record<string, string>;
	os?: string[];
	cpu?: string[];
	hasInstallScript?: boolean;
}

const root = path.join(import.meta.dirname, "../..");
const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as {
	packages: Record<string, LockEntry>;
};

/** Where npm's resolution finds `name` from the package at `from` (nested node_modules first). */
function resolve(name: string, from: string): string | null {
	for (let dir = from; ; dir = dir.slice(0, dir.lastIndexOf("/node_modules/"))) {
		const candidate = `${dir}${dir ? "/" : ""}node_modules/${name}`;
		if (lock.packages[candidate]) return candidate;
		if (!dir.includes("/node_modules/")) return lock.packages[`node_modules/${name}`] ? `node_modules/${name}` : null;
	}
}

/** The lock entries of `names` and of everything they depend on. */
function closure(names: string[]): Map<string, LockEntry> {
	const seen = new Map<string, LockEntry>();
	const queue = names.map((n) => `node_modules/${n}`);
	while (queue.length > 0) {
		const at = queue.pop() as string;
		const entry = lock.packages[at];
		if (!entry || seen.has(at)) continue;
		seen.set(at, entry);
		for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
			const found = resolve(dep, at);
			if (found) queue.push(found);
		}
	}
	return seen;
}

const CLI_AND_CLIENT = [
	"commander",
	"cli-progress",
	"csv-stringify",
	"openapi-fetch",
	"standardwebhooks",
	"openapi-typescript",
	"@redocly/openapi-core",
];

describe("package-lock.json: the CLI and the client", () => {
	it("pins their packages and pulls in no platform-specific binary or install script", () => {
		const packages = closure(CLI_AND_CLIENT);
		for (const name of CLI_AND_CLIENT) expect(packages.has(`node_modules/${name}`), name).toBe(true);
		expect(packages.size).toBeGreaterThan(CLI_AND_CLIENT.length);
		const native = [...packages].filter(([, e]) => e.os || e.cpu || e.hasInstallScript).map(([at]) => at);
		expect(native).toEqual([]);
	});
});

/** The dashboard tests' browser: Chromium comes inside @sparticuz/chromium's own package (Linux). */
const BROWSER = ["puppeteer-core", "@sparticuz/chromium"];

describe("package-lock.json: the browser tests", () => {
	it("pins puppeteer-core and @sparticuz/chromium exactly, as dev dependencies, with no install script or platform package", () => {
		const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
			devDependencies: Record<string, string>;
		};
		for (const name of BROWSER) {
			const entry = lock.packages[`node_modules/${name}`];
			expect(entry?.version, name).toBe(pkg.devDependencies[name]);
			expect(entry?.dev, name).toBe(true);
		}
		const packages = closure(BROWSER);
		expect(packages.size).toBeGreaterThan(BROWSER.length);
		const native = [...packages].filter(([, e]) => e.os || e.cpu || e.hasInstallScript).map(([at]) => at);
		expect(native).toEqual([]);
	});
});
