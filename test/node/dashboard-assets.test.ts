/**
 * The dashboard's static files: what wrangler serves from workers/status/assets (the `assets`
 * directory of the status Worker's config, and of the config `npm run dev` generates from it) is
 * exactly what the page preloads, and nothing there is Worker code.
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { workerConfigFiles, writeLocalConfigs } from "../../scripts/lib/configs.ts";
import { readWorkerConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { DASHBOARD_HTML, DASHBOARD_MODULES } from "../../workers/status/dashboard/page.ts";

const assets = path.join(root, "workers/status/assets");
const files = (readdirSync(assets, { recursive: true }) as string[]).filter((f) => path.extname(f) !== "");

describe("the dashboard's static assets", () => {
	it("are the status Worker's assets directory, in production and under npm run dev", () => {
		const [local] = writeLocalConfigs();
		for (const file of [workerConfigFiles.status, local ?? ""]) {
			const directory = readWorkerConfig(file).assets?.directory ?? "";
			expect(path.resolve(root, path.dirname(file), directory), file).toBe(assets);
		}
	});
	it("hold the page's scripts, each preloaded, and its stylesheet; nothing else", () => {
		const scripts = files.filter((f) => f.endsWith(".js")).map((f) => path.relative("dashboard", f));
		expect(scripts.sort()).toEqual([...DASHBOARD_MODULES].sort());
		expect(files.filter((f) => !f.endsWith(".js"))).toEqual([path.join("dashboard", "style.css")]);
		expect(DASHBOARD_HTML).toContain('<link rel="stylesheet" href="/dashboard/style.css">');
	});
});
