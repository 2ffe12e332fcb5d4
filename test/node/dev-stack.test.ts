/**
 * scripts/lib/dev-stack.ts's `ready()`: a stack is up when its own server says it serves the port,
 * not when anything on that port answers `/healthz`. Two stacks can be given the same free port (a
 * free port can only be asked for, not held); the one that binds second exits with "Address already
 * in use" while the first answers on the port, and was once taken for ready (a bench then found no
 * workerd under it). Stand-in servers, so no wrangler is started.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DevStack, freePort, startStack } from "../../scripts/lib/dev-stack.ts";

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
		const free = await freePort();
		const script = `require("node:http").createServer((q, s) => s.end("ok")).listen(+process.env.PORT, "127.0.0.1", () => console.log("[wrangler:info] Ready on http://127.0.0.1:" + process.env.PORT));`;
		const own = await stack(free, script);
		await expect(own.ready(20_000)).resolves.toBeUndefined();
		expect((await fetch(`${own.url}/healthz`)).status).toBe(200);
	});
});
