/**
 * The repository's wrangler, run by the repository's Node (scripts run under Node 22 through npm;
 * a global wrangler or Node 20 would not do).
 */
import { type SpawnOptions, spawn } from "node:child_process";
import path from "node:path";

export const root = path.join(import.meta.dirname, "../..");

/** The repository's wrangler; R2C_WRANGLER_BIN names a stand-in script (the deploy tests' fake wrangler). */
const wranglerBin = process.env.R2C_WRANGLER_BIN ?? path.join(root, "node_modules/wrangler/bin/wrangler.js");

/** Default local state, the same directory a plain `wrangler dev` or `wrangler d1 … --local` uses. */
export const defaultPersistDir = path.join(root, ".wrangler/state");

/** D1 database name shared by every Worker (the `database_name` of their DB binding). */
export const databaseName = "r2-captions";

/** Starts wrangler with `args`; the caller owns the child (signals, exit). */
export function spawnWrangler(args: string[], options: SpawnOptions = {}) {
	return spawn(process.execPath, [wranglerBin, ...args], { cwd: root, ...options });
}

export interface RunResult {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs wrangler to completion, echoing its output when `echo` is set, and returns what it printed. */
export function runWrangler(
	args: string[],
	options: { echo?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
	return new Promise((resolve, reject) => {
		const child = spawnWrangler(args, {
			stdio: ["ignore", "pipe", "pipe"],
			// CI=1: never stop at a confirmation prompt (for example before applying migrations).
			env: { ...process.env, CI: "1", ...options.env },
		});
		let stdout = "";
		let stderr = "";
		child.stdout?.on("data", (chunk: Buffer) => {
			stdout += chunk;
			if (options.echo) process.stdout.write(chunk);
		});
		child.stderr?.on("data", (chunk: Buffer) => {
			stderr += chunk;
			if (options.echo) process.stderr.write(chunk);
		});
		child.on("error", reject);
		child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
	});
}

/** Applies the D1 migrations to local state in `persistTo` (what `npm run dev` serves from). */
export async function migrateLocal(persistTo: string): Promise<void> {
	const result = await runWrangler([
		"d1",
		"migrations",
		"apply",
		databaseName,
		"--local",
		"--persist-to",
		persistTo,
		// The production config: its local copies bind the same database, so they share this state.
		"-c",
		"wrangler.jsonc",
	]);
	if (result.code !== 0) {
		process.stderr.write(result.stdout + result.stderr);
		throw new Error(`applying the D1 migrations locally failed (wrangler exited ${result.code})`);
	}
	const upToDate = result.stdout.includes("No migrations to apply");
	console.log(upToDate ? "D1 schema is up to date (local)." : "D1 migrations applied (local).");
}
