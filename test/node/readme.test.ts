/**
 * The README is the operating manual: its configuration table must name every variable and secret
 * a Worker reads, and every `npm run …` it tells a user to type must exist.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { productionConfigs, writeLocalConfigs } from "../../scripts/lib/configs.ts";
import { readWorkerConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const section = (title: string) => {
	const start = readme.indexOf(`\n## ${title}`);
	const end = readme.indexOf("\n## ", start + 1);
	return start < 0 ? "" : readme.slice(start, end < 0 ? undefined : end);
};

describe("README", () => {
	const table = section("Configuration");

	// Production configs and their local copies (which add the emulator's knobs).
	it.each([...productionConfigs, ...writeLocalConfigs()])(
		"the configuration table lists every var and secret of %s",
		(file) => {
			const config = readWorkerConfig(file);
			const names = [...Object.keys(config.vars), ...(config.secrets?.required ?? [])];
			const missing = names.filter((name) => !new RegExp(`^\\| \`${name}\``, "m").test(table));
			expect(missing).toEqual([]);
		},
	);

	it("only tells users to run npm scripts that exist", () => {
		const scripts = Object.keys(
			(JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> })
				.scripts,
		);
		const mentioned = [...readme.matchAll(/npm run ([a-z][\w:-]*)/g)].map((m) => m[1]);
		expect(mentioned.length).toBeGreaterThan(0);
		expect(mentioned.filter((name) => !scripts.includes(name ?? ""))).toEqual([]);
	});

	it("the path map names every top-level folder of the repository, and the dashboard", () => {
		const map = section("Where things are");
		// The repository's own folders: those git tracks (not node_modules, not test output).
		const tracked = execFileSync("git", ["ls-files"], { cwd: root, encoding: "utf8" }).split("\n");
		const folders = [...new Set(tracked.filter((f) => f.includes("/")).map((f) => `${f.split("/")[0]}/`))].filter(
			(folder) => !folder.startsWith("."),
		);
		expect(folders.length).toBeGreaterThan(5);
		expect(folders.filter((folder) => !map.includes(`\`${folder}`))).toEqual([]);
		expect(map).toContain("`workers/status/dashboard/page.ts`, `assets/dashboard/`");
	});
});
