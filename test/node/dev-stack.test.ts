/**
 * scripts/lib/dev-stack.ts's `ready()`: a stack is up when its own server says it serves the port,
 * not when anything on that port answers `/healthz`. Two stacks can be given the same free port (a
 * free port can only be asked for, not held); the one that binds second exits with "Address already
 * in use" while the first answers on the port, and was once taken for ready (a bench then found no
 * workerd under it). And its `stop()`: once Ctrl-C has stopped the stack, no timer of the grace is
 * left running (it kept vitest's process alive for 10 s after the node project's teardown stopped
 * a leased stack). Stand-in servers, so no wrangler is started.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { type DevStack, freePort, groupAlive, startStack } from "../../scripts/lib/dev-stack.ts";

const state = mkdtempSync(path.join(tmpdir(), "r2-captions-dev-stack-"));
const stacks: DevStack[] = [];
const servers: Server[] = [];

afterAll(() => {
	for (const stack of stacks) stack.dispose();
	for (const server of servers) server.close();
	rmSync(state, { recursive: true, force: true });
});

/** Another stack's server: it answers `/healthz` on a port of its own. */
async function otherStack(): Promise<number> {
	const server = createServer((_req, res) => res.writeHead(200).end("ok"));
	servers.push(server);
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return (server.address() as AddressInfo).port;
}

/** A stand-in for wrangler that serves `/healthz` on PORT and says it is ready, as wrangler does. */
const serving = `require("node:http").createServer((q, s) => s.end("ok")).listen(+process.env.PORT, "127.0.0.1", () => console.log("[wrangler:info] Ready on http://127.0.0.1:" + process.env.PORT));`;

/** A stand-in for wrangler: `script` run by Node with PORT set. */
function stack(port: number, script: string): Promise<DevStack> {
	return startStack({
		command: () => [process.execPath, ["-e", script]],
		persistTo: state,
		keepState: true,
		port,
		host: "127.0.0.1",
		env: { PORT: String(port) },
	}).then((s) => {
		stacks.push(s);
		return s;
	});
}

describe("a local stack's ready()", () => {
	it("is not fooled by another stack answering on the port its server could not bind", async () => {
		const port = await otherStack();
		// Like wrangler on a taken port: it says so and exits (a moment later, so that the other
		// server's /healthz is polled first).
		const loser = await stack(
			port,
			"console.error('Address already in use'); setTimeout(() => process.exit(1), 1500);",
		);
		await expect(loser.ready(20_000)).rejects.toThrow(/exited before serving/);
	});

	it("is ready once its own server serves /healthz and says it is ready on the port", async () => {
		const own = await stack(await freePort(), serving);
		await expect(own.ready(20_000)).resolves.toBeUndefined();
		expect((await fetch(`${own.url}/healthz`)).status).toBe(200);
	});
});

describe("a local stack's stop()", () => {
	it("leaves no timer running once Ctrl-C has stopped the stack", async () => {
		// Stops at once on Ctrl-C, as `npm run dev` does.
		const own = await stack(await freePort(), `${serving} process.on("SIGINT", () => process.exit(0));`);
		await own.ready(20_000);
		const pid = own.server.pid ?? 0;
		// A grace no other timer has: the process is shared with the files before this one (the node
		// project's isolate: false), whose timers may still come and go, so only this one is followed.
		const graceMs = 987_654;
		const set = vi.spyOn(globalThis, "setTimeout");
		const cleared = vi.spyOn(globalThis, "clearTimeout");
		let grace: unknown[] = [];
		let clearedTimers: unknown[] = [];
		try {
			await own.stop(graceMs);
			grace = set.mock.calls.flatMap((call, i) => (call[1] === graceMs ? [set.mock.results[i]?.value] : []));
			clearedTimers = cleared.mock.calls.map((call) => call[0]);
		} finally {
			set.mockRestore();
			cleared.mockRestore();
		}
		expect(grace).toHaveLength(1);
		expect(clearedTimers).toContain(grace[0]);
		expect(groupAlive(pid)).toBe(false);
	});
});
