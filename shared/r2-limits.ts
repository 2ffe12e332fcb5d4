/**
 * R2's limits on what a put writes (docs: R2 platform limits), checked before writing, and R2's
 * refusal of a put that passed the check anyway: the binding throws an Error whose message ends
 * with R2's error code, `put: Your metadata headers exceed the maximum allowed metadata size. (10012)`.
 */

/** An object key: at most this many UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** An object's custom metadata, keys and values together: at most this many bytes. */
export const MAX_METADATA_BYTES = 8192;

/** R2's error code for a put whose custom metadata is over its limit. */
export const R2_METADATA_TOO_LARGE = 10012;
/** R2's error code for a key it does not take (over MAX_KEY_BYTES, for one). */
export const R2_INVALID_OBJECT_NAME = 10020;

export const utf8Length = (s: string): number => new TextEncoder().encode(s).byteLength;

/**
 * The size of custom metadata in UTF-8 bytes, keys and values. R2's documentation gives the limit,
 * not how it counts; local R2 counts a string with any character over U+00FF at two bytes per
 * UTF-16 unit, so a put under this count can still be refused (R2_METADATA_TOO_LARGE).
 */
export const metadataBytes = (metadata: Record<string, string>): number =>
	Object.entries(metadata).reduce((sum, [k, v]) => sum + utf8Length(k) + utf8Length(v), 0);

/** R2's error code in an error its binding threw, or null for any other error. */
export function r2ErrorCode(error: unknown): number | null {
	if (!(error instanceof Error)) return null;
	const code = /\((\d{5})\)$/.exec(error.message)?.[1];
	return code === undefined ? null : Number(code);
}
