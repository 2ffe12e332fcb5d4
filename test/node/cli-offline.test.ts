/**
 * The `r2c` command without a server: `npx r2c` from the clone, `--help` on every command, and
 * the errors met before (or instead of) talking to the API.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
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

describe("r2c without a server", () => {
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
