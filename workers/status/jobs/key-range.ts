/**
 * Object-key prefixes as index ranges: `key LIKE 'p%'` cannot use an index (and treats `%`/`_`
 * in keys as wildcards), whereas `key >= p AND key < upper(p)` is an exact, indexed range.
 * SQLite compares TEXT as UTF-8 bytes, which orders like code points, so the upper bound is the
 * prefix with its last code point incremented.
 */

/** The smallest string greater than every string that starts with `prefix`; null if none exists. */
export function prefixUpperBound(prefix: string): string | null {
	const points = Array.from(prefix, (ch) => ch.codePointAt(0) ?? 0);
	while (points.length > 0) {
		const last = points.pop() ?? 0;
		if (last < 0x10ffff) {
			// Skip the surrogate block: those code points cannot appear in UTF-8 text.
			const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
			return String.fromCodePoint(...points, next);
		}
	}
	return null;
}

/** SQL condition and bindings restricting `column` to keys that start with `prefix`. */
export function prefixCondition(column: string, prefix: string): { sql: string; params: string[] } {
	const upper = prefixUpperBound(prefix);
	if (prefix === "") return { sql: "1", params: [] };
	if (upper === null) return { sql: `${column} >= ?`, params: [prefix] };
	return { sql: `${column} >= ? AND ${column} < ?`, params: [prefix, upper] };
}
