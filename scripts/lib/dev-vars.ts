/**
 * Local secrets: `.dev.vars` at the repository root, made from the committed `.dev.vars.example`
 * when missing. It is the one place a developer edits secrets for every Worker.
 *
 * Why the launcher also passes them as environment variables: in a multi-config `wrangler dev`
 * each Worker reads `.dev.vars` from its own config's folder (workers/webhooks/.dev.vars…), and
 * `--env-file` reaches only the first Worker. A Worker that declares `[secrets] required` reads
 * missing secrets from the process environment instead, so one root file serves them all.
 */
import { appendFileSync, copyFileSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";
import { root } from "./wrangler.ts";

export const devVarsPath = path.join(root, ".dev.vars");
const examplePath = path.join(root, ".dev.vars.example");

/**
 * Creates `.dev.vars` from the example when it is missing, and adds to an existing one the
 * secrets the example has gained since (a new Worker's secret), never changing a value the
 * developer set. Returns what it did, for the launcher to say.
 */
export function ensureDevVars(): string | null {
	if (!existsSync(examplePath)) throw new Error(".dev.vars.example is missing: cannot create .dev.vars");
	if (!existsSync(devVarsPath)) {
		copyFileSync(examplePath, devVarsPath);
		return "Created .dev.vars from .dev.vars.example.";
	}
	const current = parseEnv(readFileSync(devVarsPath, "utf8"));
	const example = readFileSync(examplePath, "utf8");
	const missing = Object.keys(parseEnv(example)).filter((name) => !(name in current));
	if (missing.length === 0) return null;
	const lines = example.split("\n").filter((line) => missing.some((name) => line.startsWith(`${name}=`)));
	const existing = readFileSync(devVarsPath, "utf8");
	appendFileSync(devVarsPath, `${existing.endsWith("\n") ? "" : "\n"}${lines.join("\n")}\n`);
	return `Added ${missing.join(", ")} to .dev.vars from .dev.vars.example.`;
}

/** The local secrets, creating `.dev.vars` first when needed. */
export function readDevVars(): Record<string, string> {
	ensureDevVars();
	const parsed = parseEnv(readFileSync(devVarsPath, "utf8"));
	return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, string] => e[1] !== undefined));
}

/** The admin token of the local status API (`ADMIN_TOKEN` in `.dev.vars`). */
export function adminToken(): string {
	const token = readDevVars().ADMIN_TOKEN;
	if (!token) throw new Error(`ADMIN_TOKEN is not set in ${devVarsPath}`);
	return token;
}
