/**
 * The main job, as a user runs it: `npm run dev` (every Worker in one `wrangler dev`, local D1,
 * R2 and Queues, the model emulator), an upload through the API, the job polled until it
 * succeeds, then Ctrl-C. Runs on its own port and a temporary state directory, so a developer's
 * running server and local data are left alone.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminToken } from "../../scripts/lib/dev-vars.ts";
import { root } from "../../scripts/lib/wrangler.ts";

const persistTo = mkdtempSync(path.join(tmpdir(), "r2-captions-smoke-"));
let server: ChildProcess;
let output = "";
let port = 0;
let exited: Promise<number | null>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once("error", reject);
		probe.listen(0, () => {
			const address = probe.address();
			const p = typeof address === "object" && address ? address.port : 0;
			probe.close(() => resolve(p));
		});
	});
}

const portIsFree = (p: number) =>
	new Promise<boolean>((resolve) => {
		const probe = createServer();
		probe.once("error", () => resolve(false));
		probe.listen(p, () => probe.close(() => resolve(true)));
	});

/** Whether any process of the server's process group (npm, the launcher, wrangler, workerd) lives. */
function groupAlive(pid: number): boolean {
	try {
		process.kill(-pid, 0);
		return true;
	} catch {
		return false;
	}
}

async function until<T>(what: string, deadlineMs: number, probe: () => Promise<T | undefined>): Promise<T> {
	const deadline = Date.now() + deadlineMs;
	while (Date.now() < deadline) {
		const value = await probe().catch(() => undefined);
		if (value !== undefined) return value;
		await sleep(250);
	}
	throw new Error(`timed out waiting for ${what}\n--- npm run dev output ---\n${output.slice(-4000)}`);
}

beforeAll(async () => {
	port = await freePort();
	// Its own process group, like a terminal's foreground job: Ctrl-C signals the whole group.
	server = spawn("npm", ["run", "dev", "--", "--port", String(port), "--persist-to", persistTo], {
		cwd: root,
		detached: true,
		stdio: ["ignore", "pipe", "pipe"],
		// A registry of its own: wrangler's shared dev registry routes queue messages that have no
		// consumer in one `wrangler dev` session to another session's consumer, and this server must
		// neither take nor get messages of a developer's running sessions.
		env: { ...process.env, NO_COLOR: "1", WRANGLER_REGISTRY_PATH: path.join(persistTo, "registry") },
	});
	server.stdout?.on("data", (c: Buffer) => {
		output += c;
	});
	server.stderr?.on("data", (c: Buffer) => {
		output += c;
	});
	exited = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
}, 10_000);

afterAll(() => {
	if (server.pid && groupAlive(server.pid)) process.kill(-server.pid, "SIGKILL");
	rmSync(persistTo, { recursive: true, force: true });
});

describe("npm run dev", () => {
	const api = () => `http://localhost:${port}`;

	it("serves /healthz, captions an uploaded image end to end, and stops cleanly on Ctrl-C", async () => {
		await until("GET /healthz", 90_000, async () => {
			const res = await fetch(`${api()}/healthz`);
			return res.ok ? true : undefined;
		});

		// The launcher made .dev.vars from the example on a fresh clone; the API reads it too.
		const auth = { Authorization: `Bearer ${adminToken()}` };
		const key = `smoke/${crypto.randomUUID()}.png`;
		const upload = await fetch(`${api()}/v1/images/${key}`, {
			method: "PUT",
			headers: { ...auth, "Content-Type": "image/png" },
			body: readFileSync(path.join(root, "samples/shapes-on-white.png")),
		});
		const queued = (await upload.json()) as { id: string; status: string; key: string };
		expect(upload.status).toBe(202);
		expect(queued).toMatchObject({ key, status: "queued" });

		const job = await until("the job to finish", 60_000, async () => {
			const res = await fetch(`${api()}/v1/jobs/${queued.id}`, { headers: auth });
			const body = (await res.json()) as { status: string; caption: string | null; model: string | null };
			return body.status === "succeeded" || body.status === "failed" ? body : undefined;
		});
		expect(job).toMatchObject({ status: "succeeded", model: "@cf/moondream/moondream3.1-9B-A2B" });
		// The emulator reads the image: its caption names the format and the size.
		expect(job.caption).toMatch(/emulated/i);
		expect(job.caption).toContain("PNG");
		expect(job.caption).toContain("640×480");
		// The status Worker reads the consumer's model-health registry (a Durable Object of another Worker).
		const models = (await (await fetch(`${api()}/v1/models`, { headers: auth })).json()) as {
			data: { id: string; status: string; calls_1h: number }[];
		};
		expect(models.data[0]).toMatchObject({ id: job.model, status: "ok", calls_1h: 1 });

		const pid = server.pid!;
		process.kill(-pid, "SIGINT");
		const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
		expect(stopped, output.slice(-2000)).toBe(true);
		await until("every process of npm run dev to exit", 15_000, async () => (groupAlive(pid) ? undefined : true));
		expect(groupAlive(pid)).toBe(false);
		expect(await portIsFree(port)).toBe(true);
	}, 180_000);
});
