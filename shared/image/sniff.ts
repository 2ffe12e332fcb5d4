/**
 * Image type sniffing from bytes (never from names or Content-Type) and dimension reading from
 * headers, for JPEG, PNG, WebP, GIF and BMP. Works on a header prefix for large objects.
 */
import { JobFailure } from "../jobs/errors";
import { ascii, type ImageFormat, MIME, sniffFormat } from "./format";

export { type ImageFormat, MIME, sniffFormat } from "./format";

export interface ImageInfo {
	format: ImageFormat;
	mime: string;
	width: number;
	height: number;
}

function jpegSize(b: Uint8Array, dv: DataView): [number, number] | null {
	let i = 2;
	while (i + 9 < b.length) {
		if (b[i] !== 0xff) return null;
		const marker = b[i + 1] ?? 0;
		if (marker === 0xff) {
			i++;
			continue;
		}
		// Standalone markers carry no length.
		if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
			i += 2;
			continue;
		}
		const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
		if (isSof) return [dv.getUint16(i + 7), dv.getUint16(i + 5)];
		i += 2 + dv.getUint16(i + 2);
	}
	return null;
}

function webpSize(b: Uint8Array, dv: DataView): [number, number] | null {
	const chunk = ascii(b, 12, 4);
	if (chunk === "VP8X" && b.length >= 30) {
		const w = 1 + (b[24]! | (b[25]! << 8) | (b[26]! << 16));
		const h = 1 + (b[27]! | (b[28]! << 8) | (b[29]! << 16));
		return [w, h];
	}
	if (chunk === "VP8 " && b.length >= 30) return [dv.getUint16(26, true) & 0x3fff, dv.getUint16(28, true) & 0x3fff];
	if (chunk === "VP8L" && b.length >= 25) {
		const bits = dv.getUint32(21, true);
		return [(bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1];
	}
	return null;
}

function dimensions(format: ImageFormat, b: Uint8Array): [number, number] | null {
	const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
	switch (format) {
		case "jpeg":
			return jpegSize(b, dv);
		case "png":
			return b.length >= 24 && ascii(b, 12, 4) === "IHDR" ? [dv.getUint32(16), dv.getUint32(20)] : null;
		case "webp":
			return webpSize(b, dv);
		case "gif":
			return b.length >= 10 ? [dv.getUint16(6, true), dv.getUint16(8, true)] : null;
		case "bmp":
			return [Math.abs(dv.getInt32(18, true)), Math.abs(dv.getInt32(22, true))];
	}
}

/**
 * Sniffs the format and reads the dimensions from the first bytes of an object.
 * Throws `unsupported_media_type` for non-images and `invalid_image` for broken headers.
 */
export function inspectImage(head: Uint8Array): ImageInfo {
	const format = sniffFormat(head);
	if (!format) throw new JobFailure("unsupported_media_type", "The object is not a JPEG, PNG, WebP, GIF or BMP image.");
	const size = dimensions(format, head);
	if (!size || size[0] <= 0 || size[1] <= 0) {
		throw new JobFailure("invalid_image", `The ${format.toUpperCase()} header is damaged or incomplete.`);
	}
	return { format, mime: MIME[format], width: size[0], height: size[1] };
}

/** True when the whole file ends the way its format says it must (catches truncated uploads). */
export function isComplete(format: ImageFormat, b: Uint8Array): boolean {
	const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
	switch (format) {
		case "jpeg": {
			// The end-of-image marker, allowing for padding some encoders append.
			let end = b.length;
			while (end > 2 && b[end - 1] === 0x00) end--;
			return b[end - 2] === 0xff && b[end - 1] === 0xd9;
		}
		case "png":
			return b.length >= 12 && ascii(b, b.length - 8, 4) === "IEND";
		case "gif":
			return b[b.length - 1] === 0x3b;
		case "webp":
			return dv.getUint32(4, true) + 8 <= b.length;
		case "bmp":
			return dv.getUint32(2, true) <= b.length;
	}
}

/** Full check of a buffered image: type, dimensions and completeness. */
export function validateImage(bytes: Uint8Array): ImageInfo {
	const info = inspectImage(bytes);
	if (!isComplete(info.format, bytes)) {
		throw new JobFailure("invalid_image", `The ${info.format.toUpperCase()} data is truncated.`);
	}
	return info;
}
