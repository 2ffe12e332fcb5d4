/**
 * What an Images binding error says, from its numeric `code`
 * (developers.cloudflare.com/images/reference/troubleshooting/). Both the consumer (downscaling
 * before a model call) and the status Worker (dashboard previews) read it.
 *
 * - `undecodable`: 9412 (not an image), 9520 (unsupported format): the bytes' fault, for good.
 * - `undecodable_or_internal`: 9523 ("could not be resized"): the troubleshooting page lists it for
 *   an invalid format and as an internal error too (local mode also reports a damaged image under
 *   it), so one 9523 proves nothing; the consumer retries once before it blames the image.
 * - `too_large`: 9413, the 100-megapixel limit.
 * - `account`: 9422 (usage limit), 9432 (plan): the account, not the image; retrying for minutes
 *   will not change it.
 * - `internal`: anything else (9424, 9516-9518, 9522, no code at all): the service's passing trouble.
 */
export type ImagesErrorKind = "undecodable" | "undecodable_or_internal" | "too_large" | "account" | "internal";

export interface ImagesError {
	kind: ImagesErrorKind;
	code: number | null;
	detail: string;
}

const KINDS = new Map<number, ImagesErrorKind>([
	[9412, "undecodable"],
	[9520, "undecodable"],
	[9523, "undecodable_or_internal"],
	[9413, "too_large"],
	[9422, "account"],
	[9432, "account"],
]);

export function classifyImagesError(err: unknown): ImagesError {
	const detail = err instanceof Error ? err.message : String(err);
	const code = err instanceof Error && "code" in err && typeof err.code === "number" ? err.code : null;
	return { kind: (code !== null && KINDS.get(code)) || "internal", code, detail };
}

/**
 * The most bytes the Images binding takes as input: 20 MB, on the binding's own page
 * (developers.cloudflare.com/images/transform-images/bindings/). Decimal megabytes, the smaller
 * reading, so nothing at the edge is sent to fail there.
 */
export const IMAGES_MAX_INPUT_BYTES = 20_000_000;
