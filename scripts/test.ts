/**
 * `npm test`: the static checks (generated files, types, lint) and the vitest suite, then one line
 * per stage with its duration. The checks run one after another while vitest runs beside them, at
 * the lowest CPU priority: vitest's first files spend much of their time waiting (pacing,
 * cool-downs, quiet starts), and the checks take the CPU that leaves idle. Exits non-zero when any
 * stage fails.
 */
import { spawn } from "node:child_process";
import { constants, setPriority } from "node:os";
import path from "node:path";
import { root } from "./lib/wrangler.ts";

interface Stage {
	name: string;
	command: string[];
}

interface StageResult {
	name: string;
	code: number;
	seconds: number;
	output: string;
}

/** The checks, in order; each is an npm script a developer can run alone. */
const CHECKS: Stage[] = ["types:check", "client:check", "typecheck", "lint"].map((script) => ({
	name: script,
	command: ["npm", "run", "--silent", script],
}));

/** vitest's own entry under this Node (`npx` would start npm first to find it: about a CPU-second). */
const VITEST: Stage = {
	name: "vitest",
	command: [process.execPath, path.join(root, "node_modules/vitest/vitest.mjs"), "run", ...process.argv.slice(2)],
};

/**
 * Every Node process of the run (vitest, its workers, each wrangler and `r2c` a test starts) keeps
 * the code it compiles in one cache: wrangler alone is 15 MB of JavaScript, started about 25 times a
 * run, and each start compiles it again without one (about 0.4 CPU-seconds).
 */
const env = { NODE_COMPILE_CACHE: path.join(root, "node_modules/.cache/node-compile"), ...process.env };

/**
 * Runs a stage; `stream` prints its output as it comes, otherwise it is kept for the summary. A
 * `background` stage runs at the lowest CPU priority (its processes inherit it): it takes the cores
 * vitest leaves idle (while its first files wait on pacing and cool-downs) instead of slowing
 * vitest's start, which every later file waits for.
 */
function run(stage: Stage, stream: boolean, background = false): Promise<StageResult> {
	const started = performance.now();
	return new Promise((resolve) => {
		const [command = "", ...args] = stage.command;
		const child = spawn(command, args, { cwd: root, env, stdio: stream ? "inherit" : ["ignore", "pipe", "pipe"] });
		// Set before npm has started the check's own processes, which inherit it.
		if (background && child.pid !== undefined) setPriority(child.pid, constants.priority.PRIORITY_LOW);
		let output = "";
		child.stdout?.on("data", (c: Buffer) => {
			output += c;
		});
		child.stderr?.on("data", (c: Buffer) => {
			output += c;
		});
		child.on("close", (code) =>
			resolve({ name: stage.name, code: code ?? 1, seconds: (performance.now() - started) / 1000, output }),
		);
	});
}

async function checks(): Promise<StageResult[]> {
	const results: StageResult[] = [];
	for (const stage of CHECKS) results.push(await run(stage, false, true));
	return results;
}

const started = performance.now();
const [checkResults, vitest] = await Promise.all([checks(), run(VITEST, true)]);
const total = (performance.now() - started) / 1000;

for (const failed of checkResults.filter((r) => r.code !== 0)) {
	console.error(`\n--- ${failed.name} failed (exit ${failed.code}) ---\n${failed.output}`);
}
const rows = [...checkResults, vitest];
console.log("\nstage          result  seconds");
for (const r of rows) {
	console.log(`${r.name.padEnd(14)} ${(r.code === 0 ? "ok" : "FAILED").padEnd(7)} ${r.seconds.toFixed(1).padStart(7)}`);
}
console.log(`${"total (wall)".padEnd(14)} ${"".padEnd(7)} ${total.toFixed(1).padStart(7)}`);
console.log("(the checks run one after another, beside vitest, at the lowest CPU priority)");
process.exit(rows.every((r) => r.code === 0) ? 0 : 1);
