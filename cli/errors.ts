/**
 * How `r2c` fails: one line on stderr that says what went wrong and what to do (or, with
 * `--json`, `{"error": {...}}` on stderr), and a non-zero exit code. API answers, network
 * failures and the command's own errors each get their wording here.
 */
import { ApiError } from "../client/index.ts";

/** A failure of the command itself (bad arguments, files, configuration). */
export class CliError extends Error {
	override readonly name = "CliError";
	readonly exitCode: number;
	constructor(message: string, exitCode = 1) {
		super(message);
		this.exitCode = exitCode;
	}
}

/** fetch's "fetch failed" TypeError carries the socket error (ECONNREFUSED, ENOTFOUND…) as its cause. */
function networkCause(err: unknown): string | null {
	if (!(err instanceof TypeError) || err.message !== "fetch failed") return null;
	const cause = err.cause;
	if (typeof cause === "object" && cause !== null) {
		const code = "code" in cause && typeof cause.code === "string" ? cause.code : null;
		const message = "message" in cause && typeof cause.message === "string" ? cause.message : null;
		return code ?? message ?? "network error";
	}
	return "network error";
}

export interface Described {
	code: string;
	message: string;
	status?: number;
}

/**
 * An answer without the API's error envelope: its body (a server's HTML error page) says nothing
 * the user can act on, the URL does. A 5xx may also come from a proxy or the platform in front of
 * the right URL (a Worker over its CPU limit gets Cloudflare's HTML page), and a 413 from a proxy
 * whose body limit is below the API's.
 */
function foreignAnswer(status: number, content: string, apiUrl: string): string {
	const answered = `${apiUrl} answered ${status} (${content})`;
	if (status === 413) return `${answered}: a proxy in front of the API refused a request body this large`;
	return status >= 500
		? `${answered}, not an answer of the r2-captions API: a proxy in front of it failed, or check --api-url / R2C_API_URL`
		: `${answered}, not the r2-captions API: check --api-url / R2C_API_URL`;
}

export function describe(err: unknown, apiUrl: string): Described {
	if (err instanceof CliError) return { code: "usage", message: err.message };
	if (err instanceof ApiError && err.foreign !== null) {
		return { code: err.code, status: err.status, message: foreignAnswer(err.status, err.foreign, apiUrl) };
	}
	if (err instanceof ApiError) {
		const answer = `${err.status} ${err.code}: ${err.message}`;
		switch (err.status) {
			case 401:
				return {
					code: err.code,
					status: 401,
					message: `the API refused the token (${answer}). Set R2C_TOKEN or pass --token.`,
				};
			case 403:
				return { code: err.code, status: 403, message: `this token may not do that (${answer})` };
			case 404:
				return { code: err.code, status: 404, message: `not found (${answer})` };
			default:
				return { code: err.code, status: err.status, message: `the API answered ${answer}` };
		}
	}
	// openapi-fetch parses a success as JSON: a page served at that URL (a web server, a single-page
	// app answering every path) fails there, before any status is looked at.
	if (err instanceof SyntaxError) {
		return {
			code: "not_json",
			message: `${apiUrl} answered with something that is not JSON, not the r2-captions API: check --api-url / R2C_API_URL`,
		};
	}
	const cause = networkCause(err);
	if (cause !== null) {
		return {
			code: "network_error",
			message: `cannot reach the API at ${apiUrl} (${cause}). Is it running (npm run dev)? Set R2C_API_URL or pass --api-url.`,
		};
	}
	return { code: "internal_error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

/** Reports `err` and sets the exit code (1 unless the error says otherwise). */
export function report(err: unknown, apiUrl: string, json: boolean): void {
	const described = describe(err, apiUrl);
	process.stderr.write(json ? `${JSON.stringify({ error: described })}\n` : `r2c: ${described.message}\n`);
	process.exitCode = err instanceof CliError ? err.exitCode : 1;
}

/** Whether `err` will fail every further request too (so a bulk command stops instead of going on). */
export function isFatal(err: unknown): boolean {
	// Another server at the URL answers every request so; a proxy's 5xx may be passing, and its 413
	// is about one body: smaller files may still pass.
	if (err instanceof ApiError && err.foreign !== null) return err.status < 500 && err.status !== 413;
	if (err instanceof ApiError) return err.status === 401 || err.status === 403;
	if (err instanceof SyntaxError) return true;
	return networkCause(err) !== null;
}
