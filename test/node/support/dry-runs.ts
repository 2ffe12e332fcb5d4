/**
 * `wrangler deploy --dry-run` of every Worker's production config, once for the whole node run
 * (test/node/support/dry-runs-setup.ts runs them on the first call): dry-run.test.ts checks what
 * wrangler printed and bundled, capacity-bench.test.ts runs the bundles. A dry run costs about two
 * seconds of CPU (wrangler's start-up and esbuild), and both files would otherwise make the same
 * three.
 */
import path from "node:path";
import { inject } from "vitest";
import { z } from "zod";

/** One Worker's dry run: its config, wrangler's exit code and output, and the directory it bundled to. */
export const DryRun = z.object({
	config: z.string(),
	code: z.number(),
	stdout: z.string(),
	stderr: z.string(),
	outdir: z.string(),
});
export type DryRun = z.infer<typeof DryRun>;

/** The dry run of `config` (a path from the repository's root, as in productionConfigs). */
export async function dryRunOf(config: string): Promise<DryRun> {
	const res = await fetch(`${inject("dryRunBroker")}/dry-runs`, { method: "POST" });
	if (!res.ok) throw new Error(`the dry runs did not run:\n${await res.text()}`);
	const run = z
		.array(DryRun)
		.parse(await res.json())
		.find((r) => r.config === config);
	if (!run) throw new Error(`no dry run of ${config}`);
	return run;
}

/** The bundle that the dry run of `config` wrote (its entry module), for a local stack to run as it is. */
export async function dryRunBundle(config: string): Promise<string> {
	const run = await dryRunOf(config);
	if (run.code !== 0) throw new Error(`wrangler deploy --dry-run -c ${config} failed:\n${run.stdout}${run.stderr}`);
	return path.join(run.outdir, "index.js");
}
