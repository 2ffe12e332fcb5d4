/**
 * Runs in Node before the suite: serves the image fixtures on loopback, since tests inside workerd
 * cannot read the file system. Each is made (with sharp, cached between runs) when first asked for,
 * not before the suite starts: on a fresh clone the large one alone took about 3 CPU-seconds, all
 * of it before the first file could start.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import sharp from "sharp";
import type { TestProject } from "vitest/node";
import { cachedFile } from "../../scripts/lib/file-cache.ts";

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
const FIXTURES: Record<string, () => Promise<Buffer>> = {
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

/** A scripted answer of the webhook receiver: status, headers, and an optional delay before answering. */
interface ScriptedAnswer {
	status: number;
	headers?: Record<string, string>;
	delayMs?: number;
}

/**
 * The webhook receiver the tests run (test/webhooks): `POST /hooks/<name>` records the request and
 * answers with the next scripted answer for <name> (200 when none is left); `PUT /hooks/<name>/script`
 * sets the answers; `GET /hooks/<name>/requests` returns what was received, in order.
 */
function webhookReceiver() {
	const received = new Map<string, { method: string; headers: Record<string, string>; body: string }[]>();
	const scripts = new Map<string, ScriptedAnswer[]>();
	return async (req: IncomingMessage, res: ServerResponse, route: string) => {
		const chunks: Buffer[] = [];
		for await (const chunk of req) chunks.push(chunk as Buffer);
		const body = Buffer.concat(chunks).toString("utf8");
		const [name = "", action] = route.split("/");
		if (req.method === "PUT" && action === "script") {
			scripts.set(name, JSON.parse(body) as ScriptedAnswer[]);
			res.writeHead(204).end();
		} else if (req.method === "GET" && action === "requests") {
			res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(received.get(name) ?? []));
		} else {
			const headers = Object.fromEntries(
				Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]),
			);
			received.set(name, [...(received.get(name) ?? []), { method: req.method ?? "", headers, body }]);
			const answer = scripts.get(name)?.shift() ?? { status: 200 };
			if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
			if (!res.destroyed) res.writeHead(answer.status, answer.headers).end("ok");
		}
	};
}

export default async function setup(project: TestProject) {
	const made = new Map<string, Promise<Buffer>>();
	const file = (name: string) => {
		const make = Object.hasOwn(FIXTURES, name) ? FIXTURES[name] : undefined;
		if (!make) return undefined;
		const bytes = made.get(name) ?? cachedFile(path.join(CACHE, name), make);
		made.set(name, bytes);
		return bytes;
	};
	const receiver = webhookReceiver();
	const server = createServer((req, res) => {
		const url = req.url ?? "";
		if (url.startsWith("/hooks/")) {
			receiver(req, res, url.slice("/hooks/".length)).catch(() => res.writeHead(500).end());
			return;
		}
		const name = decodeURIComponent((req.url ?? "").replace(/^\/fixtures\//, ""));
		const bytes = file(name);
		if (!bytes) {
			res.writeHead(404).end();
			return;
		}
		bytes.then(
			(body) => res.writeHead(200, { "content-length": body.length }).end(body),
			(err: unknown) => res.writeHead(500).end(`fixture ${name}: ${String(err)}`),
		);
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	project.provide("fixturesUrl", `http://127.0.0.1:${port}/fixtures`);
	project.provide("hooksUrl", `http://127.0.0.1:${port}/hooks`);
	return () =>
		new Promise<void>((resolve) => {
			server.close(() => resolve());
			// A runtime still holding a keep-alive connection would otherwise keep the run from ending.
			server.closeAllConnections();
		});
}
