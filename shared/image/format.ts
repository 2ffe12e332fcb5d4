/**
 * Which image format bytes are, from their first bytes alone (never from names or Content-Type):
 * JPEG, PNG, WebP, GIF or BMP. Free of imports so that the status Worker, the consumer and the
 * `r2c` command (run by Node from its sources) all sniff the same way.
 */

export type ImageFormat = "jpeg" | "png" | "webp" | "gif" | "bmp";

export const MIME: Record<ImageFormat, string> = {
	jpeg: "image/jpeg",
	png: "image/png",
	webp: "image/webp",
	gif: "image/gif",
	bmp: "image/bmp",
};

/** How many leading bytes `sniffFormat` needs at most. */
export const SNIFF_BYTES = 26;

export const ascii = (b: Uint8Array, at: number, len: number) => String.fromCharCode(...b.subarray(at, at + len));

/** The format of the bytes, or null if they are not one of the accepted image formats. */
export function sniffFormat(b: Uint8Array): ImageFormat | null {
	if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
	if (b.length >= 8 && ascii(b, 0, 8) === "\x89PNG\r\n\x1a\n") return "png";
	if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "webp";
	if (b.length >= 6 && (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a")) return "gif";
	if (b.length >= 26 && ascii(b, 0, 2) === "BM") return "bmp";
	return null;
}
