/**
 * Structured logs: one JSON object per line, so Workers Logs can filter on fields. Never secrets:
 * every URL in a logged string loses its query string and any `user:password@` (webhook and
 * callback URLs often carry tokens there), whichever field or message it appears in.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** An http(s) URL inside a text: scheme, optional userinfo, host and path, optional query. */
const URL_IN_TEXT = /\b(https?:\/\/)(?:[^\s/?#@"]*@)?([^\s?#"]*)(\?[^\s#"]*)?/gi;

/** The text with every URL's credentials dropped and its query string replaced by `?redacted`. */
export const redactUrls = (text: string): string =>
	text.replace(URL_IN_TEXT, (_m, scheme: string, rest: string, query: string | undefined) =>
		query === undefined ? `${scheme}${rest}` : `${scheme}${rest}?redacted`,
	);

export function log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
	const line = JSON.stringify({ level, event, ...fields }, (_key, value: unknown) =>
		typeof value === "string" ? redactUrls(value) : value,
	);
	if (level === "error") console.error(line);
	else if (level === "warn") console.warn(line);
	else console.log(line);
}

export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
