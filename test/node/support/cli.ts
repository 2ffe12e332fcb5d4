/** Runs the `r2c` command as a user's shell would: its own process, no terminal, exit code and output. */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { root } from "../../../scripts/lib/wrangler.ts";

const bin = path.join(root, "cli/r2c.js");

export interface Running {
	child: ChildProcess;
	stdout(): string;
	stderr(): string;
	exited: Promise<number | null>;
}

/** Starts `r2c args…` with `env` on top of a clean environment (no R2C_* or API_URL of the caller's). */
export function startR2c(args: string[], env: Record<string, string> = {}, cwd = root): Running {
	const inherited = Object.fromEntries(
		Object.entries(process.env).filter(([name]) => !name.startsWith("R2C_") && name !== "API_URL"),
	);
	const child = spawn(process.execPath, [bin, ...args], {
		cwd,
		env: { ...inherited, NO_COLOR: "1", ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	let stdout = "";
	let stderr = "";
	child.stdout?.on("data", (c: Buffer) => {
		stdout += c;
	});
	child.stderr?.on("data", (c: Buffer) => {
		stderr += c;
	});
	const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
	return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

export interface Finished {
	code: number | null;
	stdout: string;
	stderr: string;
}

export async function r2c(args: string[], env: Record<string, string> = {}, cwd = root): Promise<Finished> {
	const running = startR2c(args, env, cwd);
	const code = await running.exited;
	return { code, stdout: running.stdout(), stderr: running.stderr() };
}
