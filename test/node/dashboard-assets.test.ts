/**
 * The dashboard's static files: what wrangler serves from workers/status/assets (the `assets`
 * directory of the status Worker's config, and of the config `npm run dev` generates from it) is
 * exactly what the page preloads, and nothing there is Worker code.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { workerConfigFiles, writeLocalConfigs } from "../../scripts/lib/configs.ts";
import { readWorkerConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { DASHBOARD_HTML, DASHBOARD_MODULES } from "../../workers/status/dashboard/page.ts";

const assets = path.join(root, "workers/status/assets");
// What wrangler serves: every file but those .assetsignore names (the dashboard's types).
const ignored = readFileSync(path.join(assets, ".assetsignore"), "utf8");
const files = (readdirSync(assets, { recursive: true }) as string[]).filter(
	(f) => path.extname(f) !== "" && !f.endsWith(".d.ts"),
);

describe("the dashboard's static assets", () => {
	it("are the status Worker's assets directory, in production and under npm run dev", () => {
		const [local] = writeLocalConfigs();
		for (const file of [workerConfigFiles.status, local ?? ""]) {
			const directory = readWorkerConfig(file).assets?.directory ?? "";
			expect(path.resolve(root, path.dirname(file), directory), file).toBe(assets);
		}
	});
	it("hold the page's scripts, each preloaded, and its stylesheet; nothing else", () => {
		expect(ignored.split("\n")).toContain("**/*.d.ts");
		const scripts = files.filter((f) => f.endsWith(".js")).map((f) => path.relative("dashboard", f));
		expect(scripts.sort()).toEqual([...DASHBOARD_MODULES].sort());
		expect(files.filter((f) => !f.endsWith(".js"))).toEqual([path.join("dashboard", "style.css")]);
		expect(DASHBOARD_HTML).toContain('<link rel="stylesheet" href="/dashboard/style.css">');
	});

	it("keep each view to itself: views import the shared modules, never another view", () => {
		const views = files.filter((f) => f.startsWith(path.join("dashboard", "views")));
		expect(views.length).toBeGreaterThan(4);
		const crossing = views.flatMap((view) =>
			[...readFileSync(path.join(assets, view), "utf8").matchAll(/from "(\.\/[^"]+)"/g)].map(
				(m) => `${view} → ${m[1]}`,
			),
		);
		expect(crossing).toEqual([]);
	});
});
