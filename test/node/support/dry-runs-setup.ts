/**
 * The node project's global setup for the dry runs of every Worker's production config
 * (test/node/support/dry-runs.ts). No dry run starts here: a loopback broker answers
 * `POST /dry-runs` by running them (all at once) the first time it is asked and answers every
 * later ask with the same results, so a run of Node files that do not use them makes none. The
 * bundles stay until the run ends.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { productionConfigs } from "../../../scripts/lib/configs.ts";
import { runWrangler } from "../../../scripts/lib/wrangler.ts";
import type { DryRun } from "./dry-runs.ts";
import { startLeaseBroker } from "./lease-broker.ts";

export default async function setup(project: TestProject) {
	const outRoot = mkdtempSync(path.join(tmpdir(), "r2-captions-dry-run-"));
	const dryRun = async (config: string): Promise<DryRun> => {
		const outdir = path.join(outRoot, config.replaceAll("/", "_"));
		const { code, stdout, stderr } = await runWrangler(["deploy", "--dry-run", "-c", config, "--outdir", outdir]);
		return { config, code, stdout, stderr, outdir };
	};
	const broker = await startLeaseBroker("/dry-runs", () => Promise.all(productionConfigs.map(dryRun)));
	project.provide("dryRunBroker", broker.url);
	return async () => {
		await broker.close();
		rmSync(outRoot, { recursive: true, force: true });
	};
}
