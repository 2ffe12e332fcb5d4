/**
 * What every `r2c` command starts from: the API URL and token (flags, then `R2C_API_URL` (or
 * `API_URL`) / `R2C_TOKEN`; for a loopback URL, the clone's `.dev.vars` as a last resort, so `npx r2c` works
 * against `npm run dev` with nothing set), the typed client, and where output goes (`--json`).
 */
import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";
import type { Command } from "commander";
import { createR2cClient, type R2cClient } from "../client/index.ts";
import { devVarsPath } from "../scripts/lib/dev-vars.ts";
import { CliError } from "./errors.ts";

export const DEFAULT_API_URL = "http://localhost:8787";

/**
 * The API URL the environment names: `R2C_API_URL`, else `API_URL` (what `npm run demo` and the
 * other scripts read), else the local `npm run dev`. `r2c` and the demo both take it from here.
 */
export function defaultApiUrl(env: NodeJS.ProcessEnv = process.env): string {
	return env.R2C_API_URL || env.API_URL || DEFAULT_API_URL;
}

export interface GlobalOptions {
	apiUrl: string;
	token?: string;
	json?: boolean;
}

export interface Context {
	apiUrl: string;
	token: string;
	json: boolean;
	api: R2cClient;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** `ADMIN_TOKEN` of the clone's `.dev.vars`, the token `npm run dev` accepts (read, never created). */
function localDevToken(): string | undefined {
	if (!existsSync(devVarsPath)) return undefined;
	return parseEnv(readFileSync(devVarsPath, "utf8")).ADMIN_TOKEN || undefined;
}

export function parseApiUrl(value: string): URL {
	try {
		const url = new URL(value);
		if (url.protocol === "http:" || url.protocol === "https:") return url;
	} catch {
		// Reported below.
	}
	throw new CliError(`the API URL ${JSON.stringify(value)} is not an http(s) URL (set R2C_API_URL or --api-url)`);
}

/**
 * The base URL the client's paths (`/v1/…`) go after. The API's paths all start with `/v1`, so a
 * URL copied with it (`http://localhost:8787/v1`, as the docs write the routes) means the same
 * server, not `/v1/v1/jobs`.
 */
export function apiBaseUrl(url: URL): string {
	return url.href.replace(/\/$/, "").replace(/\/v1$/, "");
}

export function context(command: Command): Context {
	const options = command.optsWithGlobals<GlobalOptions>();
	const url = parseApiUrl(options.apiUrl);
	const apiUrl = apiBaseUrl(url);
	const token = options.token || (LOOPBACK.has(url.hostname) ? localDevToken() : undefined);
	if (!token) {
		throw new CliError(`no API token: set R2C_TOKEN or pass --token (the ADMIN_TOKEN secret or an API key)`);
	}
	// An API key's quota answers 429 with Retry-After: wait it out (said on stderr, so --json stays clean).
	const onRateLimited = (seconds: number, request: Request) =>
		process.stderr.write(`rate limited: ${request.method} ${new URL(request.url).pathname} again in ${seconds} s\n`);
	const api = createR2cClient({ baseUrl: apiUrl, token, onRateLimited });
	return { apiUrl, token, json: options.json === true, api };
}

/** Prints `value` as JSON on stdout (one document; pretty, since people read it too). */
export function printJson(value: unknown): void {
	process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
