import { describe, expect, it } from "vitest";
import { inspectImage, inspectWindows, isComplete, sniffFormat, validateImage } from "../../shared/image/sniff";
import { JobFailure } from "../../shared/jobs/errors";
import { bmp, fixture, withExtendedXmp } from "../support/fixtures";

function failure(fn: () => unknown): JobFailure {
	try {
		fn();
	} catch (err) {
		if (err instanceof JobFailure) return err;
		throw err;
	}
	throw new Error("expected a JobFailure");
}

describe("image sniffing", () => {
	it.each([
		["small.jpg", "jpeg", "image/jpeg"],
		["small.png", "png", "image/png"],
		["small.webp", "webp", "image/webp"],
		["small.gif", "gif", "image/gif"],
	])("%s is sniffed as %s with its dimensions", async (name, format, mime) => {
		expect(validateImage(await fixture(name))).toEqual({ format, mime, width: 64, height: 48 });
	});

	it("reads BMP dimensions, including top-down (negative height) files", () => {
		expect(validateImage(bmp(2, 3))).toEqual({ format: "bmp", mime: "image/bmp", width: 2, height: 3 });
	});

	it("reads the dimensions of a large JPEG from its first bytes only", async () => {
		const head = (await fixture("large-6000x4000.jpg")).subarray(0, 64 * 1024);
		expect(inspectImage(head)).toMatchObject({ format: "jpeg", width: 6000, height: 4000 });
	});

	it.each([
		["text", new TextEncoder().encode("just some text, long enough to look at")],
		["a PDF", new TextEncoder().encode("%PDF-1.4\n%âãÏÓ\n1 0 obj")],
		["an SVG", new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')],
		["no bytes", new Uint8Array()],
	])("%s is unsupported_media_type", (_name, bytes) => {
		expect(sniffFormat(bytes)).toBeNull();
		expect(failure(() => validateImage(bytes)).code).toBe("unsupported_media_type");
	});

	it.each(["small.jpg", "small.png", "small.gif", "small.webp"])("a truncated %s is invalid_image", async (name) => {
		const bytes = await fixture(name);
		const truncated = bytes.subarray(0, bytes.length - 10);
		expect(isComplete(sniffFormat(bytes) ?? "jpeg", bytes)).toBe(true);
		expect(failure(() => validateImage(truncated)).code).toBe("invalid_image");
	});

	/** A video's first box, as a motion photo carries after its JPEG: an `ftyp` box, then noise. */
	const trailer = (length: number) => {
		const bytes = new Uint8Array(length).map((_, i) => (i * 37 + 11) & 0xff);
		bytes.set([0, 0, 0, 0x18, ...new TextEncoder().encode("ftypmp42")]);
		return bytes;
	};
	const joined = (...parts: Uint8Array[]) => {
		const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
		let at = 0;
		for (const part of parts) {
			out.set(part, at);
			at += part.length;
		}
		return out;
	};

	it.each([
		["small.jpg", "a JPEG followed by a video (a motion photo)"],
		["small.png", "a PNG with bytes after IEND"],
		["small.gif", "a GIF with bytes after its trailer"],
		["small.webp", "a WebP with bytes after its RIFF chunk"],
	])("%s: %s is complete; the same image cut short is not", async (name) => {
		const image = await fixture(name);
		const withTrailer = joined(image, trailer(3000));
		expect(validateImage(withTrailer)).toMatchObject({ width: 64, height: 48 });
		const cut = joined(image.subarray(0, image.length - 10));
		expect(failure(() => validateImage(cut)).code).toBe("invalid_image");
	});

	it("a JPEG whose EXIF thumbnail ends inside it is complete only when the image itself ends", async () => {
		const image = await fixture("small.jpg");
		// An APP1 segment holding a thumbnail's end-of-image marker: walking by segments skips it.
		const app1 = joined(new Uint8Array([0xff, 0xe1, 0x00, 0x08, 0x45, 0x78, 0xff, 0xd9, 0, 0]));
		const withExif = joined(image.subarray(0, 2), app1, image.subarray(2));
		expect(isComplete("jpeg", withExif)).toBe(true);
		expect(isComplete("jpeg", joined(withExif.subarray(0, withExif.length - 10), trailer(100)))).toBe(false);
	});

	// Each format's first bytes, cut anywhere: an answer or a JobFailure (a job fails at once), never
	// another error (a RangeError was retried as a transient failure until the job gave up).
	it.each(["small.jpg", "small.png", "small.gif", "small.webp", "bmp"])(
		"%s cut at any length up to 64 bytes",
		async (name) => {
			const bytes = name === "bmp" ? bmp(2, 3) : await fixture(name);
			const codes = new Set<string>();
			for (let length = 0; length <= Math.min(64, bytes.length); length++) {
				const head = bytes.subarray(0, length);
				try {
					validateImage(head);
					codes.add("valid");
				} catch (err) {
					if (!(err instanceof JobFailure)) throw new Error(`${name} cut at ${length} bytes: ${err}`);
					codes.add(err.code);
				}
			}
			expect(codes).toContain("invalid_image");
		},
	);

	it("a PNG whose header is cut short is invalid_image", async () => {
		const head = (await fixture("small.png")).subarray(0, 16);
		expect(failure(() => validateImage(head)).code).toBe("invalid_image");
	});
});

describe("the dimensions of an object read a window at a time", () => {
	/** Reads `bytes` as the consumer reads a large object: `size` bytes from each offset asked for. */
	function windows(bytes: Uint8Array, size: number) {
		const offsets: number[] = [];
		const read = async (offset: number) => {
			offsets.push(offset);
			return bytes.subarray(offset, offset + size);
		};
		return { offsets, read };
	}

	async function rejection(promise: Promise<unknown>): Promise<JobFailure> {
		const err = await promise.then(
			() => null,
			(e: unknown) => e,
		);
		if (err instanceof JobFailure) return err;
		throw new Error(`expected a JobFailure, got ${err}`);
	}

	it("a JPEG whose metadata segments run past the first window: its markers are followed to its frame header", async () => {
		const bytes = withExtendedXmp(await fixture("small.jpg"), 1_000_000);
		const size = 64 * 1024;
		expect(failure(() => inspectImage(bytes.subarray(0, size))).code).toBe("invalid_image");
		const { offsets, read } = windows(bytes, size);
		expect(await inspectWindows(read)).toEqual({ format: "jpeg", mime: "image/jpeg", width: 64, height: 48 });
		// Forward only, each window starting at the first segment the last one did not hold whole.
		expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
		expect(offsets.length).toBeLessThanOrEqual(Math.ceil(1_000_000 / 65537) + 2);
	});

	it("a JPEG cut inside its metadata segments, or damaged between them, is invalid_image", async () => {
		const bytes = withExtendedXmp(await fixture("small.jpg"), 1_000_000);
		expect((await rejection(inspectWindows(windows(bytes.subarray(0, 900_000), 256 * 1024).read))).code).toBe(
			"invalid_image",
		);
		const damaged = bytes.slice();
		damaged[2 + 3 * 65537] = 0x00;
		expect((await rejection(inspectWindows(windows(damaged, 256 * 1024).read))).code).toBe("invalid_image");
	});

	it.each(["small.png", "small.webp", "small.gif", "large-6000x4000.jpg"])(
		"%s: the first window is enough",
		async (name) => {
			const { offsets, read } = windows(await fixture(name), 256 * 1024);
			expect(await inspectWindows(read)).toMatchObject({ width: expect.any(Number), height: expect.any(Number) });
			expect(offsets).toEqual([0]);
		},
	);

	it("bytes that are no image are unsupported_media_type", async () => {
		const text = new TextEncoder().encode("just some text, long enough to look at");
		expect((await rejection(inspectWindows(windows(text, 1024).read))).code).toBe("unsupported_media_type");
	});
});
