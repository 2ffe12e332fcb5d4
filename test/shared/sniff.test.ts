import { describe, expect, it } from "vitest";
import { inspectImage, isComplete, sniffFormat, validateImage } from "../../shared/image/sniff";
import { JobFailure } from "../../shared/jobs/errors";
import { fixture } from "../support/fixtures";

/** A minimal BMP: 14-byte file header + 40-byte info header, 2×3 pixels, 24 bit. */
function bmp(width: number, height: number): Uint8Array {
	const rowBytes = Math.ceil((width * 3) / 4) * 4;
	const size = 54 + rowBytes * height;
	const b = new Uint8Array(size);
	const v = new DataView(b.buffer);
	b.set([0x42, 0x4d]);
	v.setUint32(2, size, true);
	v.setUint32(10, 54, true);
	v.setUint32(14, 40, true);
	v.setInt32(18, width, true);
	v.setInt32(22, -height, true);
	v.setUint16(26, 1, true);
	v.setUint16(28, 24, true);
	return b;
}

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
