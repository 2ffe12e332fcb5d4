/**
 * The `r2c` command without a server: `npx r2c` from the clone, `--help` on every command, and
 * the errors met before (or instead of) talking to the API.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { createR2cClient, uploadImage } from "../../client/index.ts";
import { freePort } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { r2c } from "./support/cli.ts";

const { version } = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string };

const COMMANDS = [
	[],
	["upload"],
	["jobs"],
	["jobs", "list"],
	["jobs", "get"],
	["batch"],
	["batch", "create"],
	["batch", "list"],
	["batch", "get"],
	["batch", "cancel"],
	["export"],
	["webhooks"],
	["webhooks", "listen"],
];

/**
 * A server that is not the API, as a static file server is: an HTML 404 page for every path, and
 * 204 with no body under /empty, a proxy's HTML 413 for every upload under /proxy. Records the paths asked for (without the query); closed when the test ends.
 */
async function plainServer(): Promise<{ origin: string; paths: string[] }> {
	const paths: string[] = [];
	const server = createServer((req, res) => {
		paths.push(new URL(req.url ?? "/", "http://x").pathname);
		if (req.url?.startsWith("/empty/")) return res.writeHead(204).end();
		// A proxy in front of the API with a smaller body limit: the API's lists pass, uploads do not.
		if (req.url?.startsWith("/proxy/")) {
			if (req.method === "GET") return res.writeHead(200, { "Content-Type": "application/json" }).end('{"data":[]}');
			return res.writeHead(413, { "Content-Type": "text/html" }).end("<html><h1>413 Request Entity Too Large</h1>");
		}
		// A single-page app's server: every path is its page, with 200.
		if (req.url?.startsWith("/app/")) return res.writeHead(200, { "Content-Type": "text/html" }).end("<!DOCTYPE html>");
		res.writeHead(404, { "Content-Type": "text/html; charset=utf-8" });
		res.end("<!DOCTYPE HTML>\n<html><head><title>Error response</title></head><body><h1>404</h1></body></html>\n");
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
	return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

// Every test waits on processes of its own (r2c, npx): they run at the same time.
describe.concurrent("r2c without a server", () => {
	it("runs as `npx r2c` from the clone, under the repository's Node 22", async () => {
		const output = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
			const child = spawn("npx", ["r2c", "--version"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] });
			let stdout = "";
			child.stdout.on("data", (c: Buffer) => {
				stdout += c;
			});
			child.on("close", (code) => resolve({ code, stdout }));
		});
		expect(output).toEqual({ code: 0, stdout: `${version}\n` });
	});

	it("`npx r2c` under the machine's own Node prints no npm warning (the Node it needs comes with the clone)", async () => {
		// npm runs under the first `node` on PATH: leave out the clone's, as a shell outside npm would.
		const outside = (process.env.PATH ?? "")
			.split(path.delimiter)
			.filter((dir) => !dir.includes("node_modules"))
			.join(path.delimiter);
		// The first `npx r2c` of a clone installs the clone into npm's exec cache, and that install
		// checks the package's engines against npm's own Node: an empty cache makes every run the first.
		const cache = mkdtempSync(path.join(tmpdir(), "r2c-npx-cache-"));
		onTestFinished(() => rmSync(cache, { recursive: true, force: true }));
		const output = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
			const child = spawn("npx", ["r2c", "--version"], {
				cwd: root,
				env: { ...process.env, PATH: outside, npm_config_cache: cache, npm_config_offline: "true" },
				stdio: ["ignore", "pipe", "pipe"],
			});
			let stdout = "";
			let stderr = "";
			child.stdout.on("data", (c: Buffer) => {
				stdout += c;
			});
			child.stderr.on("data", (c: Buffer) => {
				stderr += c;
			});
			child.on("close", (code) => resolve({ code, stdout, stderr }));
		});
		expect(output).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
	});

	it("takes the API URL from R2C_API_URL, else from API_URL as `npm run demo` does", async () => {
		const [a, b] = [await freePort(), await freePort()];
		const demo = await r2c(["jobs", "list"], { API_URL: `http://127.0.0.1:${a}`, R2C_TOKEN: "t" });
		expect(demo.stderr).toContain(`cannot reach the API at http://127.0.0.1:${a} `);
		const both = await r2c(["jobs", "list"], {
			API_URL: `http://127.0.0.1:${a}`,
			R2C_API_URL: `http://127.0.0.1:${b}`,
			R2C_TOKEN: "t",
		});
		expect(both.stderr).toContain(`cannot reach the API at http://127.0.0.1:${b} `);
	});

	it.each(COMMANDS.map((c) => [c.join(" ") || "(top level)", c]))("--help on %s", async (_name, command) => {
		const run = await r2c([...command, "--help"]);
		expect(run.code).toBe(0);
		expect(run.stdout).toMatch(new RegExp(`^Usage: ${["r2c", ...command].join(" ")} `));
		expect(run.stdout).toContain("--json");
	});

	it("reports a network error with the URL and what to check", async () => {
		const port = await freePort();
		const run = await r2c(["jobs", "list"], { R2C_API_URL: `http://127.0.0.1:${port}`, R2C_TOKEN: "t" });
		expect(run.code).toBe(1);
		expect(run.stderr).toBe(
			`r2c: cannot reach the API at http://127.0.0.1:${port} (ECONNREFUSED). Is it running (npm run dev)? ` +
				"Set R2C_API_URL or pass --api-url.\n",
		);
	});

	it("takes an API URL that ends in /v1 as the server's base URL", async () => {
		const server = await plainServer();
		const run = await r2c(["jobs", "list", "--api-url", `${server.origin}/v1/`], { R2C_TOKEN: "t" });
		expect(run.code).toBe(1);
		expect(server.paths).toEqual(["/v1/jobs"]);
		expect(run.stderr).toContain(`r2c: ${server.origin} answered 404 `);
	});

	it("says in one line that a server answering without the API's JSON errors is not the API", async () => {
		const server = await plainServer();
		const env = { R2C_TOKEN: "t" };
		const html = await r2c(["jobs", "list", "--api-url", server.origin], env);
		expect(html).toEqual({
			code: 1,
			stdout: "",
			stderr: `r2c: ${server.origin} answered 404 (text/html), not the r2-captions API: check --api-url / R2C_API_URL\n`,
		});
		const page = await r2c(["jobs", "list", "--api-url", `${server.origin}/app`], env);
		expect(page).toEqual({
			code: 1,
			stdout: "",
			stderr: `r2c: ${server.origin}/app answered with something that is not JSON, not the r2-captions API: check --api-url / R2C_API_URL\n`,
		});
		const empty = await r2c(["jobs", "list", "--api-url", `${server.origin}/empty`], env);
		expect(empty).toEqual({
			code: 1,
			stdout: "",
			stderr: `r2c: ${server.origin}/empty answered 204 (no body), not the r2-captions API: check --api-url / R2C_API_URL\n`,
		});
	});

	it("says a proxy's 413 refused the body, and goes on with the other files", async () => {
		const server = await plainServer();
		const folder = mkdtempSync(path.join(tmpdir(), "r2c-proxy-"));
		onTestFinished(() => rmSync(folder, { recursive: true, force: true }));
		// A PNG's signature is what the command looks at before it uploads.
		const png = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), Buffer.alloc(64, 1)]);
		for (const name of ["a.png", "b.png"]) writeFileSync(path.join(folder, name), png);
		const run = await r2c(["upload", folder, "--api-url", `${server.origin}/proxy`, "--concurrency", "1"], {
			R2C_TOKEN: "t",
		});
		expect(run.code).toBe(1);
		expect(server.paths.filter((p) => p.startsWith("/proxy/v1/images/"))).toEqual([
			"/proxy/v1/images/a.png",
			"/proxy/v1/images/b.png",
		]);
		expect(run.stdout).toContain(
			`${server.origin}/proxy answered 413 (text/html): a proxy in front of the API refused a request body this large`,
		);
	});

	it("asks for a token when none is set for a remote API", async () => {
		const run = await r2c(["jobs", "list", "--api-url", "https://captions.example.com"]);
		expect(run.code).toBe(1);
		expect(run.stderr).toContain("no API token: set R2C_TOKEN or pass --token");
	});

	it("refuses bad arguments before uploading anything", async () => {
		const env = { R2C_API_URL: "http://127.0.0.1:9", R2C_TOKEN: "t" };
		const out = await r2c(["upload", "samples", "--out", "results.txt"], env);
		expect(out.code).toBe(1);
		expect(out.stderr).toContain("--out results.txt: the file name must end in .jsonl or .csv");

		const missing = await r2c(["upload", "no-such-folder"], env);
		expect(missing.stderr).toContain("no such file or folder: no-such-folder");

		const usage = await r2c(["upload"], env);
		expect(usage.code).toBe(1);
		expect(usage.stderr).toContain("missing required argument 'paths'");

		const status = await r2c(["jobs", "list", "--status", "done"], env);
		expect(status.code).toBe(1);
		expect(status.stderr).toContain("Allowed choices are queued, processing, succeeded, failed");
	});
});

describe("the typed client's upload headers", () => {
	it("sends a prompt and the output headers as their UTF-8 bytes: no TypeError for ’ or ✓, no Latin-1 é", async () => {
		const received: Record<string, string>[] = [];
		const server = createServer((req, res) => {
			// Node reads header bytes one character each (Latin-1): back to the bytes, then as UTF-8.
			const utf8 = (name: string) => Buffer.from(String(req.headers[name]), "latin1").toString("utf8");
			received.push({ prompt: utf8("x-caption-prompt"), output: utf8("x-caption-output") });
			req.resume();
			req.on("end", () => res.writeHead(202, { "Content-Type": "application/json" }).end('{"id":"job_1"}'));
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
		const api = createR2cClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "t" });
		const output = JSON.stringify({ json_schema: { type: "object", description: "Légende ✓" } });
		for (const prompt of ["Décris l’image ✓", "Décris", "plain ASCII"]) {
			await uploadImage(api, "photos/cat.jpg", new Blob([new Uint8Array([0xff, 0xd8, 0xff])]), {
				prompt,
				outputHeaders: { "X-Caption-Output": output },
			});
		}
		expect(received).toEqual(["Décris l’image ✓", "Décris", "plain ASCII"].map((prompt) => ({ prompt, output })));
	});
});
