/**
 * `wrangler deploy --dry-run` of every Worker's config exactly as `npm run deploy` (or a plain
 * `wrangler deploy`) uses it: bundles each one offline, so that a config or bundling error shows
 * up in `npm test` rather than halfway through a deployment, and checks from wrangler's own
 * binding table that what would ship is the production configuration. The dry runs are made once
 * for the node run (test/node/support/dry-runs.ts): capacity-bench.test.ts runs their bundles.
 */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { productionConfigs } from "../../scripts/lib/configs.ts";
import { readWorkerConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { dryRunOf } from "./support/dry-runs.ts";

/** What wrangler must list among the bindings of each Worker's production deployment. */
const production: Record<string, string[]> = {
	"r2-captions-status": ['env.DEPLOY_MODE ("production")', "env.BUCKET (images)", "env.CAPTION_JOBS (caption-jobs)"],
	"r2-captions-consumer": ['env.MODEL_BACKEND ("workers-ai")', "env.AI ", "env.MODEL_SCHEDULER (LaneScheduler)"],
	"r2-captions-webhooks": ['env.DEPLOY_MODE ("production")', "env.WEBHOOK_DELIVERIES (webhook-deliveries)"],
};

describe("wrangler deploy --dry-run", () => {
	it("covers every Worker under workers/, each with its own config", () => {
		const entryPoints = readdirSync(path.join(root, "workers"))
			.map((dir) => path.join(root, "workers", dir, "index.ts"))
			.filter(existsSync);
		const deployed = productionConfigs.map((file) => readWorkerConfig(file).main);
		expect(entryPoints.length).toBeGreaterThanOrEqual(3);
		expect(deployed.sort()).toEqual(entryPoints.sort());
		expect(productionConfigs.map((file) => readWorkerConfig(file).name).sort()).toEqual(Object.keys(production).sort());
	});

	it.concurrent.each(productionConfigs)("%s bundles, with the production settings", async (config) => {
		const { outdir, ...result } = await dryRunOf(config);
		expect(result.code, result.stdout + result.stderr).toBe(0);
		expect(result.stdout).toContain("--dry-run: exiting now.");
		expect(existsSync(path.join(outdir, "index.js")), readdirSync(outdir).join(", ")).toBe(true);
		const bindings = result.stdout.slice(result.stdout.indexOf("following bindings"));
		for (const line of production[readWorkerConfig(config).name] ?? ["(an unknown Worker)"]) {
			expect(bindings).toContain(line);
		}
		expect(bindings).not.toMatch(/EMULATOR_|\("local"\)|\("emulator"\)/);
	});
});
