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

/** Where a walk of a JPEG's markers stopped (`at`, an index of the bytes walked). */
interface JpegWalk {
	/**
	 * found: `visit` took the marker at `at`. more: the bytes end first; the next marker starts at
	 * `at` (maybe past their end). damaged: no marker where one must be, or the image ended.
	 */
	end: "found" | "more" | "damaged";
	at: number;
}

/**
 * Walks a JPEG's markers from `from` (2: after its start of image), calling `visit` with each one,
 * scanning past the entropy-coded data after each start of scan, until `visit` takes one.
 */
function walkJpeg(b: Uint8Array, visit: (marker: number) => boolean, from = 2): JpegWalk {
	let i = from;
	while (i + 1 < b.length) {
		if (b[i] !== 0xff) return { end: "damaged", at: i };
		const marker = b[i + 1]!;
		if (marker === 0xff) {
			i++;
			continue;
		}
		if (visit(marker)) return { end: "found", at: i };
		if (marker === 0xd9) return { end: "damaged", at: i };
		// Standalone markers carry no length.
		if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
			i += 2;
			continue;
		}
		if (i + 3 >= b.length) return { end: "more", at: i };
		i += 2 + ((b[i + 2]! << 8) | b[i + 3]!);
		if (marker !== 0xda) continue;
		// Entropy-coded data: it ends at the first 0xFF that is not stuffing (0xFF00) or a restart marker.
		for (;;) {
			i = b.indexOf(0xff, i);
			if (i < 0 || i + 1 >= b.length) return { end: "more", at: b.length };
			const next = b[i + 1]!;
			if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) i += 2;
			else if (next === 0xff) i++;
			else break;
		}
	}
	return { end: "more", at: i };
}

const isSof = (marker: number) =>
	marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/**
 * What bytes of a JPEG say of its frame header (its dimensions), walking its markers from `from`:
 * the size; `next`, where the walk goes on when the bytes end before it (the metadata segments,
 * EXIF, XMP, extended XMP such as depth maps, can run to megabytes); or null when there is none
 * (damaged, or a scan or the image's end comes first).
 */
function jpegFrame(b: Uint8Array, from = 2): { size: [number, number] } | { next: number } | null {
	// A frame header, a start of scan or the image's end: the walk ends at whichever comes first.
	const walk = walkJpeg(b, (marker) => isSof(marker) || marker === 0xda || marker === 0xd9, from);
	if (walk.end === "more") return { next: walk.at };
	if (walk.end === "damaged" || !isSof(b[walk.at + 1]!)) return null;
	if (walk.at + 9 > b.length) return { next: walk.at };
	const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
	return { size: [dv.getUint16(walk.at + 7), dv.getUint16(walk.at + 5)] };
}

function jpegSize(b: Uint8Array): [number, number] | null {
	const frame = jpegFrame(b);
	return frame !== null && "size" in frame ? frame.size : null;
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
			return jpegSize(b);
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

/**
 * inspectImage for an object too large to hold: `read(offset)` gives a window of its bytes from
 * `offset` (fewer at its end, none past it). The first window has the type and dimensions of every
 * format but a JPEG whose metadata segments run past it: its markers are then followed window by
 * window, the segments' contents skipped, to its frame header. A JPEG that ends first, or whose
 * markers are damaged, is `invalid_image`.
 */
export async function inspectWindows(read: (offset: number) => Promise<Uint8Array>): Promise<ImageInfo> {
	const head = await read(0);
	let frame = sniffFormat(head) === "jpeg" ? jpegFrame(head) : null;
	let at = 0;
	while (frame !== null && "next" in frame) {
		// Each later window starts at a marker: one that cannot get past it ends the search.
		if (frame.next === 0) break;
		at += frame.next;
		frame = jpegFrame(await read(at), 0);
	}
	if (frame !== null && "size" in frame) {
		const [width, height] = frame.size;
		if (width > 0 && height > 0) return { format: "jpeg", mime: MIME.jpeg, width, height };
	}
	return inspectImage(head);
}

/** Whether a PNG's chunks reach IEND (false when the bytes end first). */
function pngEnds(b: Uint8Array, dv: DataView): boolean {
	let i = 8;
	while (i + 12 <= b.length) {
		if (ascii(b, i + 4, 4) === "IEND") return true;
		i += 12 + dv.getUint32(i);
	}
	return false;
}

/** Whether a GIF's blocks reach its trailer (false when the bytes end first or are not laid out as blocks). */
function gifEnds(b: Uint8Array): boolean {
	if (b.length < 13) return false;
	const table = (flags: number) => (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0);
	let i = 13 + table(b[10]!);
	const subBlocks = () => {
		while (i < b.length) {
			const size = b[i]!;
			i += 1 + size;
			if (size === 0) return;
		}
	};
	while (i < b.length) {
		const block = b[i];
		if (block === 0x3b) return true;
		if (block === 0x21) {
			i += 2;
			subBlocks();
		} else if (block === 0x2c) {
			if (i + 10 > b.length) return false;
			i += 10 + table(b[i + 9]!) + 1;
			subBlocks();
		} else return false;
	}
	return false;
}

/**
 * True when the file holds the whole image its header starts, up to the end its format marks
 * (catches truncated uploads). Bytes after that end are allowed: a JPEG followed by a video (the
 * "motion photo" layout), a PNG with data after IEND decode as they are.
 */
export function isComplete(format: ImageFormat, b: Uint8Array): boolean {
	const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
	switch (format) {
		case "jpeg": {
			if (walkJpeg(b, (marker) => marker === 0xd9).end === "found") return true;
			// Otherwise the end-of-image marker last, allowing for padding some encoders append.
			let end = b.length;
			while (end > 2 && b[end - 1] === 0x00) end--;
			return b[end - 2] === 0xff && b[end - 1] === 0xd9;
		}
		case "png":
			return pngEnds(b, dv) || (b.length >= 12 && ascii(b, b.length - 8, 4) === "IEND");
		case "gif":
			return gifEnds(b) || b[b.length - 1] === 0x3b;
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
