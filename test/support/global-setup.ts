/**
 * Runs in Node before the suite: makes the image fixtures (with sharp, cached between runs) and
 * serves them on loopback, since tests inside workerd cannot read the file system.
 */
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import sharp from "sharp";
import type { TestProject } from "vitest/node";

const CACHE = path.join(import.meta.dirname, "../../node_modules/.cache/r2-captions-fixtures");

/** Deterministic noise, so large fixtures do not compress to nothing. */
function noise(width: number, height: number, seed: number): Buffer {
	const buf = Buffer.alloc(width * height * 3);
	let x = seed >>> 0 || 1;
	for (let i = 0; i < buf.length; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		buf[i] = x & 0xff;
	}
	return buf;
}

const solid = (width: number, height: number) =>
	sharp({ create: { width, height, channels: 3, background: { r: 200, g: 120, b: 40 } } });

/** name → how to make it. Large ones are noise so that their byte sizes are realistic. */
export const FIXTURES: Record<string, () => Promise<Buffer>> = {
	"small.jpg": () => solid(64, 48).jpeg({ quality: 80 }).toBuffer(),
	"small.png": () => solid(64, 48).png().toBuffer(),
	"small.webp": () => solid(64, 48).webp().toBuffer(),
	"small.gif": () => solid(64, 48).gif().toBuffer(),
	"wide-2000x1000.jpg": () => solid(2000, 1000).jpeg({ quality: 80 }).toBuffer(),
	// 6000×4000 of noise: ~10 MB, far above every model's input limit.
	"large-6000x4000.jpg": () =>
		sharp(noise(6000, 4000, 7), { raw: { width: 6000, height: 4000, channels: 3 } })
			.jpeg({ quality: 70 })
			.toBuffer(),
};

async function fixture(name: string, make: () => Promise<Buffer>): Promise<Buffer> {
	const file = path.join(CACHE, name);
	if (await stat(file).catch(() => null)) return readFile(file);
	const bytes = await make();
	await writeFile(file, bytes);
	return bytes;
}

export default async function setup(project: TestProject) {
	await mkdir(CACHE, { recursive: true });
	const files = new Map<string, Buffer>();
	for (const [name, make] of Object.entries(FIXTURES)) files.set(name, await fixture(name, make));
	const server = createServer((req, res) => {
		const name = decodeURIComponent((req.url ?? "").replace(/^\/fixtures\//, ""));
		const body = files.get(name);
		if (!body) {
			res.writeHead(404).end();
			return;
		}
		res.writeHead(200, { "content-length": body.length }).end(body);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	project.provide("fixturesUrl", `http://127.0.0.1:${port}/fixtures`);
	return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
