/**
 * GET /v1/events through the CLI against `npm run dev` (the node project's shared stack): `r2c
 * events` prints the stream as JSON lines, and `r2c upload --wait` follows it (the server logs no job
 * polling). A standard EventSource client following jobs across a restart of the whole stack is
 * part of the restart test (test/node/restart.test.ts), which kills and starts a stack anyway.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { r2c, startR2c } from "./support/cli.ts";
import { type SharedStack, sharedDevStack } from "./support/shared-stack.ts";

const JobEvent = z.object({
	type: z.enum(["job.succeeded", "job.failed"]),
	data: z.object({ id: z.string(), key: z.string(), status: z.string() }),
});
const Job = z.object({ id: z.string(), key: z.string(), status: z.string() });

const work = mkdtempSync(path.join(tmpdir(), "r2c-events-test-"));
let stack: SharedStack | undefined;
afterAll(async () => {
	rmSync(work, { recursive: true, force: true });
	await stack?.release();
});

const bytes = readFileSync(path.join(root, "samples/shapes-on-white.png"));

describe("r2c and the stream", () => {
	it("r2c events prints the stream as JSON lines; r2c upload --wait follows it without polling jobs", async () => {
		// The node project's shared stack: other files' jobs run on it too, so everything below is
		// this test's prefix and jobs only.
		stack = await sharedDevStack();
		const env = { R2C_API_URL: stack.url, R2C_TOKEN: stack.token };
		const prefix = `cli-events-${crypto.randomUUID()}/`;
		// From the start of the stack's events: nothing of this test's can pass before it connects.
		const printing = startR2c(["events", "--prefix", prefix, "--after", "0"], env);

		const folder = path.join(work, "album");
		mkdirSync(folder, { recursive: true });
		writeFileSync(path.join(folder, "a.png"), bytes);
		writeFileSync(path.join(folder, "b.jpg"), readFileSync(path.join(root, "samples/striped-sailboat.jpg")));
		const before = stack.output().length;
		const waited = await r2c(["upload", folder, "--prefix", prefix, "--wait", "--json"], env);
		expect(waited.code, waited.stderr).toBe(0);
		const result = z
			.object({ files: z.array(z.object({ key: z.string(), job: Job })) })
			.parse(JSON.parse(waited.stdout));
		expect(result.files.map((f) => f.job.status)).toEqual(["succeeded", "succeeded"]);
		// Followed on the stream: no GET of its jobs while it waited (polling reads each job again and again).
		const during = stack.output().slice(before);
		for (const { job } of result.files) expect(during).not.toContain(`GET /v1/jobs/${job.id}`);
		const uploaded = [...during.matchAll(/PUT \/v1\/images\/(\S+) 202/g)].map((m) => decodeURIComponent(m[1] ?? ""));
		expect(uploaded).toEqual(expect.arrayContaining(result.files.map((f) => f.key)));

		await until("r2c events to print both", 30_000, async () =>
			printing.stdout().trim().split("\n").filter(Boolean).length >= 2 ? true : undefined,
		);
		printing.child.kill("SIGINT");
		await printing.exited;
		const lines = printing
			.stdout()
			.trim()
			.split("\n")
			.map((line) => z.object({ id: z.string(), type: z.string(), data: JobEvent }).parse(JSON.parse(line)));
		expect(lines.map((l) => l.data.data.id).sort()).toEqual(result.files.map((f) => f.job.id).sort());
		expect(lines.every((l) => l.type === l.data.type)).toBe(true);
	}, 300_000);
});
