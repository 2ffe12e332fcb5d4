/**
 * Brings an image within a model's limits (docs/jobs.md). Small images pass through;
 * larger ones are streamed from R2 into the Images binding and downscaled, so a multi-megabyte
 * upload is never held, let alone expanded, in the Worker's 128 MB.
 */

import { type ImageInfo, inspectImage } from "../../shared/image/sniff";
import { JobFailure, TransientError } from "../../shared/jobs/errors";
import type { ImageLimits, ModelImage } from "../../shared/models/types";

/** Beyond this many pixels an image is refused rather than decoded (decompression bombs). */
export const MAX_PIXELS = 100_000_000;

export interface SourceImage {
	info: ImageInfo;
	/** The whole object, when it was small enough to read into memory. */
	bytes: Uint8Array | null;
	/** A fresh stream of the whole object. */
	open(): Promise<ReadableStream<Uint8Array>>;
}

/** Attempts to get under the byte limit: each one smaller and more compressed than the last. */
const STEPS = [
	{ scale: 1, quality: 85 },
	{ scale: 0.75, quality: 75 },
	{ scale: 0.5, quality: 65 },
];

function fits(info: ImageInfo, size: number, limits: ImageLimits): boolean {
	return size <= limits.maxBytes && Math.max(info.width, info.height) <= limits.maxSide;
}

async function transform(
	images: ImagesBinding,
	stream: ReadableStream<Uint8Array>,
	side: number,
	quality: number,
): Promise<Uint8Array> {
	try {
		const result = await images
			.input(stream)
			.transform({ width: side, height: side, fit: "scale-down" })
			.output({ format: "image/jpeg", quality });
		return new Uint8Array(await new Response(result.image()).arrayBuffer());
	} catch (err) {
		throw imagesFailure(err);
	}
}

/**
 * Images binding errors carry a numeric `code` (developers.cloudflare.com/images/reference/troubleshooting).
 * Decode errors are the image's fault and permanent: 9412 (not an image), 9520 (unsupported
 * format), 9523 (could not be resized, "invalid format"; the binding also reports an unexpected
 * error response under it, which is how local mode reports a damaged image). 9413 is the 100
 * megapixel limit. Anything else (9422 usage limit, 9432 plan, 9424/9516-9518/9522 internal,
 * no code at all) is the service's trouble: retried.
 */
const DECODE_ERRORS = new Set([9412, 9520, 9523]);
const AREA_LIMIT = 9413;

export function imagesFailure(err: unknown): JobFailure | TransientError {
	const detail = err instanceof Error ? err.message : String(err);
	const code = err instanceof Error && "code" in err && typeof err.code === "number" ? err.code : null;
	if (code !== null && DECODE_ERRORS.has(code)) {
		return new JobFailure("invalid_image", `The image could not be decoded: ${detail}`);
	}
	if (code === AREA_LIMIT) return new JobFailure("image_too_large", `The Images binding refused the image: ${detail}`);
	return new TransientError(`The Images binding failed${code === null ? "" : ` (${code})`}: ${detail}`);
}

export async function prepareImage(
	images: ImagesBinding,
	source: SourceImage,
	limits: ImageLimits,
): Promise<ModelImage> {
	const { info } = source;
	if (source.bytes && fits(info, source.bytes.length, limits)) return { bytes: source.bytes, info };
	if (info.width * info.height > MAX_PIXELS) {
		throw new JobFailure(
			"image_too_large",
			`The image is ${info.width}×${info.height} pixels; at most ${MAX_PIXELS / 1e6} megapixels can be captioned.`,
		);
	}
	// The first pass reads the original; later passes shrink the previous (small) result.
	let current: Uint8Array | null = null;
	for (const step of STEPS) {
		const side = Math.max(64, Math.floor(limits.maxSide * step.scale));
		const input: ReadableStream<Uint8Array> = current ? new Blob([current]).stream() : await source.open();
		current = await transform(images, input, side, step.quality);
		if (current.length <= limits.maxBytes) return { bytes: current, info: inspectImage(current) };
	}
	throw new JobFailure(
		"image_too_large",
		`The image could not be brought under the model's ${limits.maxBytes} byte limit by downscaling.`,
	);
}
