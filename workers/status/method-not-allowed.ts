/**
 * Hono answers an unmatched request with its notFound handler whatever the reason. This tells the
 * two apart: a path that some route serves with another method is a 405 (with `Allow`), anything
 * else a 404. Route patterns (`:id`, `:key{.+}`, `*`) are turned into regular expressions once.
 */

type RouteLike = { method: string; path: string };

const escapeRegExp = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");

/** A Hono route pattern as an anchored regular expression. */
export function patternToRegExp(pattern: string): RegExp {
	let source = "";
	let last = 0;
	for (const m of pattern.matchAll(/:\w+(?:\{([^}]*)\})?|\*/g)) {
		source += escapeRegExp(pattern.slice(last, m.index));
		source += m[0] === "*" ? ".*" : m[1] !== undefined ? `(?:${m[1]})` : "[^/]+";
		last = m.index + m[0].length;
	}
	return new RegExp(`^${source}${escapeRegExp(pattern.slice(last))}$`);
}

/** A Hono route pattern in OpenAPI spelling: `/v1/jobs/:id` and `/v1/captions/:key{.+}` are `/v1/jobs/{id}` and `/v1/captions/{key}`. */
export const toOpenApiPath = (pattern: string): string => pattern.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

export function allowedMethodsIndex(routes: readonly RouteLike[]): (path: string) => string[] {
	// Middleware is registered as method ALL; only real handlers define what a path allows.
	const compiled = routes
		.filter((r) => r.method !== "ALL")
		.map((r) => ({ method: r.method.toUpperCase(), re: patternToRegExp(r.path) }));
	return (path) => {
		const methods = new Set(compiled.filter((r) => r.re.test(path)).map((r) => r.method));
		if (methods.has("GET")) methods.add("HEAD");
		return [...methods].sort();
	};
}
