/**
 * The opaque cursor of the API's newest-first lists: a keyset position (created_at, id) as
 * base64url JSON. There is no OFFSET: a page starts strictly after the last row of the previous
 * one, so rows created between two requests (always newer) never shift, duplicate or hide older ones.
 */
import { z } from "zod";

export interface Position {
	t: number;
	i: string;
}

function base64url(text: string): string {
	const bytes = new TextEncoder().encode(text);
	return btoa(String.fromCharCode(...bytes))
		.replaceAll("+", "-")
		.replaceAll("/", "_")
		.replace(/=+$/, "");
}

/** The JSON a cursor of this API carries, if `cursor` is one that `schema` accepts. */
function decodeJson<T>(cursor: string, schema: z.ZodType<T>): T | null {
	if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
	try {
		const binary = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
		const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
			Uint8Array.from(binary, (c) => c.charCodeAt(0)),
		);
		const parsed = schema.safeParse(JSON.parse(text));
		return parsed.success ? parsed.data : null;
	} catch {
		return null;
	}
}

/** Cursors over rows whose ids start with `idPrefix` (`job_`, `bat_`, `msg_`). */
export function keysetCursor(idPrefix: string) {
	const Cursor = z.object({ t: z.number().int().nonnegative(), i: z.string().startsWith(idPrefix) });
	return {
		encode: (row: { created_at: number; id: string }): string =>
			base64url(JSON.stringify({ t: row.created_at, i: row.id })),
		/** The position a cursor stands for, or null when it is not one this API issued. */
		decode: (cursor: string): Position | null => decodeJson(cursor, Cursor),
	};
}

/** Cursors of lists in object-key order (`GET /v1/captions`): the last key of the page. */
export const keyOrderCursor = {
	encode: (key: string): string => base64url(JSON.stringify({ k: key })),
	/** The key a cursor stands after, or null when it is not one this API issued. */
	decode: (cursor: string): string | null => decodeJson(cursor, z.object({ k: z.string() }))?.k ?? null,
};

/** A page of `limit` rows from a query that asked for `limit + 1` (the extra one says whether there is more). */
export function keysetPage<T extends { created_at: number; id: string }>(
	results: T[],
	limit: number,
	encode: (row: T) => string,
): { rows: T[]; nextCursor: string | null } {
	const rows = results.slice(0, limit);
	const last = rows.at(-1);
	return { rows, nextCursor: results.length > limit && last ? encode(last) : null };
}
