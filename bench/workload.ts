/**
 * Benchmark images, made with sharp: a small set of photo-like JPEGs cycled through for the
 * pipeline runs, and the two large images of the memory scenario (a 6000×4000 JPEG and a PNG of
 * at least 20 MB). Made once and kept on disk: the photo-like set under node_modules/.cache (named
 * by the code that makes it), the large images in the directory the memory scenario names.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { cachedFile } from "../scripts/lib/file-cache.ts";

export interface WorkloadImage {
	name: string;
	bytes: Uint8Array;
}

/** Noise over a gradient compresses like a photo (100-200 KB at 800×600), unlike a flat colour. */
async function photoLike(width: number, height: number, seed: number): Promise<Uint8Array> {
	const noise = await sharp({
		create: {
			width,
			height,
			channels: 3,
			background: "#808080",
			noise: { type: "gaussian", mean: 128, sigma: 24 + (seed % 5) * 4 },
		},
	})
		.png()
		.toBuffer();
	const gradient = Buffer.from(
		`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
			<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
				<stop offset="0" stop-color="hsl(${(seed * 47) % 360},70%,45%)"/>
				<stop offset="1" stop-color="hsl(${(seed * 47 + 140) % 360},60%,60%)"/>
			</linearGradient></defs>
			<rect width="100%" height="100%" fill="url(#g)"/>
			<circle cx="${width / 2}" cy="${height / 2}" r="${Math.min(width, height) / 3}" fill="white" fill-opacity="0.35"/>
		</svg>`,
	);
	const out = await sharp(gradient)
		.composite([{ input: noise, blend: "soft-light" }])
		.jpeg({ quality: 82 })
		.toBuffer();
	return new Uint8Array(out);
}

const PHOTO_CACHE = path.join(import.meta.dirname, "../node_modules/.cache/r2-captions-bench-photos");

/** Eight distinct photo-like JPEGs between 640×480 and 1024×768: within every model's limits, so
 * the real consumer and the naive baseline do the same useful work (no downscaling needed). */
export async function pipelineImages(): Promise<WorkloadImage[]> {
	const sizes: [number, number][] = [
		[800, 600],
		[1024, 768],
		[640, 480],
		[960, 720],
		[800, 800],
		[1024, 683],
		[720, 960],
		[800, 533],
	];
	// Making them takes sharp about 1.7 CPU-seconds (the noise is random: no two makings give the
	// same bytes), so they are made once, into a folder named by this file's text.
	const source = await readFile(import.meta.filename);
	const dir = path.join(PHOTO_CACHE, createHash("sha256").update(source).digest("hex").slice(0, 16));
	return Promise.all(
		sizes.map(async ([w, h], i) => {
			const name = `photo-${i}-${w}x${h}.jpg`;
			return { name, bytes: await cachedCopy(path.join(dir, name), async () => Buffer.from(await photoLike(w, h, i))) };
		}),
	);
}

/** A bench image kept on disk (scripts/lib/file-cache.ts), as bytes of its own. */
const cachedCopy = async (file: string, make: () => Promise<Buffer>) => new Uint8Array(await cachedFile(file, make));

/** The memory scenario's images: a 24-megapixel JPEG and a PNG of noise just over 20 MB. */
export async function largeImages(dir: string): Promise<WorkloadImage[]> {
	const jpeg = await cachedCopy(path.join(dir, "large-6000x4000.jpg"), async () => {
		const small = await photoLike(1500, 1000, 3);
		const noise = await sharp({
			create: {
				width: 6000,
				height: 4000,
				channels: 3,
				background: "#808080",
				noise: { type: "gaussian", mean: 128, sigma: 20 },
			},
		})
			.png({ compressionLevel: 0 })
			.toBuffer();
		return sharp(small)
			.resize(6000, 4000)
			.composite([{ input: noise, blend: "soft-light" }])
			.jpeg({ quality: 85 })
			.toBuffer();
	});
	// Random pixels hardly compress: 2800×2800 RGB is 23.5 MB of pixels, a PNG of about 22 MB
	// (under the API's 25 MiB upload limit).
	const png = await cachedCopy(path.join(dir, "large-2800x2800-noise.png"), () =>
		sharp({
			create: {
				width: 2800,
				height: 2800,
				channels: 3,
				background: "#808080",
				noise: { type: "gaussian", mean: 128, sigma: 60 },
			},
		})
			.png({ compressionLevel: 6 })
			.toBuffer(),
	);
	return [
		{ name: "large-6000x4000.jpg", bytes: jpeg },
		{ name: "large-2800x2800-noise.png", bytes: png },
	];
}
