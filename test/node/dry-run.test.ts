/**
 * `wrangler deploy --dry-run` of every Worker, in its default and its production environment:
 * bundles each one exactly as `npm run deploy` would, offline, so a config or bundling error
 * shows up in `npm test` rather than halfway through a deployment.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runWrangler, workerConfigs } from "../../scripts/lib/wrangler.ts";

const outRoot = mkdtempSync(path.join(tmpdir(), "r2-captions-dry-run-"));
afterAll(() => rmSync(outRoot, { recursive: true, force: true }));

const cases = workerConfigs().flatMap((config) => [
	{ config, env: undefined },
	{ config, env: "production" },
]);

describe("wrangler deploy --dry-run", () => {
	it("covers the status, consumer and (once present) webhooks Workers", () => {
		expect(workerConfigs().slice(0, 2)).toEqual(["wrangler.toml", "workers/consumer/wrangler.toml"]);
	});

	it.concurrent.each(cases)("$config (env: $env) bundles", async ({ config, env }) => {
		const outdir = path.join(outRoot, `${config.replaceAll("/", "_")}-${env ?? "default"}`);
		const args = ["deploy", "--dry-run", "-c", config, "--outdir", outdir];
		if (env) args.push("--env", env);
		const result = await runWrangler(args);
		expect(result.code, result.stdout + result.stderr).toBe(0);
		expect(result.stdout).toContain("--dry-run: exiting now.");
		expect(existsSync(path.join(outdir, "index.js")), readdirSync(outdir).join(", ")).toBe(true);
		if (env === "production")
			expect(result.stdout).toMatch(/DEPLOY_MODE \("production"\)|MODEL_BACKEND \("workers-ai"\)/);
	});
});
