/**
 * Brings an image within a model's limits (SPEC §3 "Large images"). Small images pass through;
 * larger ones are streamed from R2 into the Images binding and downscaled, so a multi-megabyte
 * upload is never held, let alone expanded, in the Worker's 128 MB.
 */

import { type ImageInfo, inspectImage } from "../../shared/image/sniff";
import { JobFailure } from "../../shared/jobs/errors";
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
		const detail = err instanceof Error ? err.message : String(err);
		throw new JobFailure("invalid_image", `The image could not be decoded: ${detail}`);
	}
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
