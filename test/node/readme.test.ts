/**
 * The README is the operating manual: every `npm run …` it tells a user to type must exist, and
 * the settings it shows must be real. docs/configuration.md's table must name every variable and
 * secret a Worker reads. Every link to a
 * section of a Markdown file, in the docs or in a comment of the code, must name a heading that
 * file has. The error tables of docs/errors.md and docs/models.md list every code that makes a
 * model gone.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import GithubSlugger from "github-slugger";
import { describe, expect, it } from "vitest";
import { productionConfigs, writeLocalConfigs } from "../../scripts/lib/configs.ts";
import { readWorkerConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { classifyModelError } from "../../shared/models/errors.ts";

const readme = readFileSync(path.join(root, "README.md"), "utf8");
const tracked = execFileSync("git", ["ls-files"], { cwd: root, encoding: "utf8" }).split("\n").filter(Boolean);

/** The anchors GitHub gives a Markdown file's headings (a `#` line inside a fenced block is code, not a heading). */
function headingAnchors(file: string): Set<string> {
	const slugger = new GithubSlugger();
	const anchors = new Set<string>();
	let fenced = false;
	for (const line of readFileSync(path.join(root, file), "utf8").split("\n")) {
		if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
		const heading = fenced ? null : /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
		if (heading?.[1]) anchors.add(slugger.slug(heading[1]));
	}
	return anchors;
}
const section = (title: string, text = readme) => {
	const start = text.indexOf(`\n## ${title}`);
	const end = text.indexOf("\n## ", start + 1);
	return start < 0 ? "" : text.slice(start, end < 0 ? undefined : end);
};

/** The names in the first column of a Markdown table's rows (`| \`NAME\` …`). */
const tableNames = (text: string) => [...text.matchAll(/^\| `([A-Z][A-Z0-9_]*)`/gm)].map((m) => m[1] ?? "");

describe("README", () => {
	// Production configs and their local copies (which add the emulator's knobs).
	const configs = [...productionConfigs, ...writeLocalConfigs()];
	const declared = new Set(
		configs.flatMap((file) => {
			const config = readWorkerConfig(file);
			return [...Object.keys(config.vars), ...(config.secrets?.required ?? [])];
		}),
	);

	it.each(configs)("docs/configuration.md's table lists every var and secret of %s", (file) => {
		const table = section("Variables and secrets", readFileSync(path.join(root, "docs/configuration.md"), "utf8"));
		const config = readWorkerConfig(file);
		const names = [...Object.keys(config.vars), ...(config.secrets?.required ?? [])];
		const listed = new Set(tableNames(table));
		expect(names.filter((name) => !listed.has(name))).toEqual([]);
	});

	it("the settings the README's configuration table shows are ones a config declares, and are a few", () => {
		const shown = tableNames(section("Configuration"));
		expect(shown.length).toBeGreaterThan(5);
		expect(shown.length).toBeLessThan(declared.size);
		expect(shown.filter((name) => !declared.has(name))).toEqual([]);
	});

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
		const folders = [...new Set(tracked.filter((f) => f.includes("/")).map((f) => `${f.split("/")[0]}/`))].filter(
			(folder) => !folder.startsWith("."),
		);
		expect(folders.length).toBeGreaterThan(5);
		expect(folders.filter((folder) => !map.includes(`\`${folder}`))).toEqual([]);
		expect(map).toContain("`workers/status/dashboard/page.ts`, `assets/dashboard/`");
	});

	it("every link to a section of a Markdown file names a heading of that file", () => {
		const anchors = new Map<string, Set<string>>();
		const anchorsOf = (file: string) => {
			if (!anchors.has(file)) anchors.set(file, headingAnchors(file));
			return anchors.get(file) ?? new Set<string>();
		};
		const sources = tracked.filter((f) => /\.(md|ts|js|jsonc)$/.test(f) && !f.startsWith("client/"));
		const broken: string[] = [];
		let checked = 0;
		for (const file of sources) {
			const text = readFileSync(path.join(root, file), "utf8");
			// `docs/x.md#a`, `x.md#a` (from docs/, or from the root in a comment) and `(#a)` within a Markdown file.
			for (const link of text.matchAll(/(?:([\w./-]*\.md)|\]\()#([\w-]+)/g)) {
				const [whole, target, anchor = ""] = link;
				if (target === undefined && !file.endsWith(".md")) continue;
				const candidates =
					target === undefined ? [file] : [path.join(path.dirname(file), target), path.normalize(target)];
				const resolved = candidates.find((c) => tracked.includes(c) && existsSync(path.join(root, c)));
				if (resolved === undefined) continue;
				checked++;
				if (!anchorsOf(resolved).has(anchor)) broken.push(`${file}: ${whole}`);
			}
		}
		expect(checked).toBeGreaterThan(20);
		expect(broken).toEqual([]);
	});
});

describe("docs/errors.md and docs/models.md", () => {
	// Every four-digit code the classifier treats as gone: what makes a model unavailable.
	const gone = Array.from({ length: 9000 }, (_, i) => 1000 + i).filter(
		(code) => classifyModelError(new Error(`${code}: x`)).kind === "gone",
	);
	const codesIn = (line: string) => new Set([...line.matchAll(/`(\d{4})`/g)].map((m) => Number(m[1])));
	const row = (file: string, start: string) =>
		readFileSync(path.join(root, file), "utf8")
			.split("\n")
			.find((line) => line.startsWith(start)) ?? "";

	it.each([
		["docs/errors.md", "| `model_unavailable` |"],
		["docs/models.md", "| gone |"],
	])("%s's row %s lists every code the classifier treats as gone", (file, start) => {
		expect(gone.length).toBeGreaterThan(5);
		const listed = codesIn(row(file, start));
		expect(gone.filter((code) => !listed.has(code))).toEqual([]);
	});
});
