/**
 * Brings an image within a model's limits (docs/jobs.md). Small images pass through;
 * larger ones are streamed from R2 into the Images binding and downscaled, so a multi-megabyte
 * upload is never held, let alone expanded, in the Worker's 128 MB.
 */

import { classifyImagesError, IMAGES_MAX_INPUT_BYTES } from "../../shared/image/images-errors";
import { type ImageInfo, inspectImage } from "../../shared/image/sniff";
import { JobFailure, TransientError } from "../../shared/jobs/errors";
import { type ImageLimits, ImageUnfit, type ModelImage } from "../../shared/models/types";

/** Beyond this many pixels an image is refused rather than decoded (decompression bombs). */
export const MAX_PIXELS = 100_000_000;

export interface SourceImage {
	info: ImageInfo;
	/** The object's size in bytes. */
	size: number;
	/** This is the job's second delivery or later: an ambiguous Images error now blames the image. */
	retried: boolean;
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
	retried: boolean,
): Promise<Uint8Array> {
	try {
		const result = await images
			.input(stream)
			.transform({ width: side, height: side, fit: "scale-down" })
			.output({ format: "image/jpeg", quality });
		return new Uint8Array(await new Response(result.image()).arrayBuffer());
	} catch (err) {
		throw imagesFailure(err, retried);
	}
}

/** How long an account refusal (plan, usage limit) holds the job before the one retry that may fail it. */
export const ACCOUNT_HOLD_SECONDS = 60;

/**
 * What an Images binding error does to the job (shared/image/images-errors.ts): a bad image fails
 * it; a 9523 is retried once, then blamed on the image; an account refusal is held for a minute
 * once, then fails the job with images_account_limit; anything else is retried.
 */
export function imagesFailure(err: unknown, retried: boolean): JobFailure | TransientError {
	const { kind, code, detail } = classifyImagesError(err);
	switch (kind) {
		case "undecodable":
			return new JobFailure("invalid_image", `The image could not be decoded: ${detail}`);
		case "undecodable_or_internal":
			if (retried) return new JobFailure("invalid_image", `The image could not be decoded, twice: ${detail}`);
			return new TransientError(`The Images binding could not resize the image (${code}): ${detail}`);
		case "too_large":
			return new JobFailure("image_too_large", `The Images binding refused the image: ${detail}`);
		case "account":
			if (retried) {
				return new JobFailure(
					"images_account_limit",
					`The Images binding refused this account (${code}: plan or usage limit); check Images in the Cloudflare dashboard: ${detail}`,
				);
			}
			return new TransientError(`The Images binding refused this account (${code}): ${detail}`, ACCOUNT_HOLD_SECONDS);
		case "internal":
			return new TransientError(`The Images binding failed${code === null ? "" : ` (${code})`}: ${detail}`);
	}
}

export async function prepareImage(
	images: ImagesBinding,
	source: SourceImage,
	limits: ImageLimits,
): Promise<ModelImage> {
	const { info } = source;
	if (source.bytes && fits(info, source.bytes.length, limits)) return { bytes: source.bytes, info };
	// Downscaling goes through the Images binding, which reads JPEG, PNG, GIF, WebP (and SVG, HEIC)
	// but not BMP (developers.cloudflare.com/images/transform-images/): no retry can shrink a BMP, and
	// the chain goes on to a model whose limits take it as it is (image_too_large when none does).
	if (info.format === "bmp") {
		throw new ImageUnfit(
			`The image is a BMP of ${source.size} bytes, ${info.width}×${info.height} pixels, over the model's input limit ` +
				`(${limits.maxBytes} bytes, ${limits.maxSide} pixels on the longest side). A BMP cannot be downscaled ` +
				"(the Images binding does not read BMP), so it must be within the model's input limit: convert it to PNG or JPEG.",
		);
	}
	if (source.size > IMAGES_MAX_INPUT_BYTES) {
		throw new JobFailure(
			"image_too_large",
			`The object is ${source.size} bytes: it must be downscaled, and the Images binding takes at most ${IMAGES_MAX_INPUT_BYTES} bytes.`,
		);
	}
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
		current = await transform(images, input, side, step.quality, source.retried);
		if (current.length <= limits.maxBytes) return { bytes: current, info: inspectImage(current) };
	}
	throw new JobFailure(
		"image_too_large",
		`The image could not be brought under the model's ${limits.maxBytes} byte limit by downscaling.`,
	);
}
