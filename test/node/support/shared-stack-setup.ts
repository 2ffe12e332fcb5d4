/**
 * The node project's global setup: one `npm run dev` stack with the default settings, shared by the
 * Node test files that need nothing else of a stack (test/node/support/shared-stack.ts; docs/testing.md
 * says which files may use it), and one with the tuned settings of ./tuned-stack.ts, shared by the
 * files named there. Booting a stack costs seconds of CPU on every core, so files that can share
 * one do.
 *
 * No stack starts here: a loopback broker for each answers `POST /stack` by starting it when nobody
 * holds it (and waiting until it serves), so a run of Node files that use neither boots none. A
 * file gives its lease back when it is done (`release()`); a stack stops once its last lease is
 * back and nobody has asked for IDLE_MS, instead of idling until the end of the run (an idle stack
 * still costs about a CPU-second a minute in wrangler and workerd, with `--no-watch`); a later ask
 * starts another.
 * What is made here is the migrated state every fresh stack starts from (scripts/lib/migrated-state.ts),
 * once, before any file boots one.
 * The stacks are always stopped: by the teardown after the run, and, when vitest exits without one
 * (Ctrl-C or SIGTERM end it through process.exit), by an exit handler that kills their process groups.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { type DevStack, spawnDevStack } from "../../../scripts/lib/dev-stack.ts";
import { migratedTemplate } from "../../../scripts/lib/migrated-state.ts";
import { startLeaseBroker } from "./lease-broker.ts";
import type { SharedStackInfo } from "./shared-stack.ts";
import { tunedStackArgs } from "./tuned-stack.ts";

/** How long a stack outlives its last lease: the next file that wants it usually asks sooner. */
const IDLE_MS = 15_000;

export default async function setup(project: TestProject) {
	// Made here, once, before any file boots a stack on a copy of it (and cached between runs).
	await migratedTemplate();
	const logDir = mkdtempSync(path.join(tmpdir(), "r2-captions-shared-stack-"));
	/** The stacks started and not yet disposed of, by the log file their info names. */
	const running = new Map<string, DevStack>();
	let starts = 0;

	const start = async (name: string, args: string[]): Promise<SharedStackInfo> => {
		const logFile = path.join(logDir, `npm-run-dev-${name}-${++starts}.log`);
		const stack = await spawnDevStack(name, { logFile, args });
		running.set(logFile, stack);
		await stack.ready();
		return { url: stack.url, token: stack.token, logFile };
	};
	const stop = async ({ logFile }: SharedStackInfo) => {
		const stack = running.get(logFile);
		// Ctrl-C first, as a user stops it; whatever is left after the grace is killed.
		await stack?.stop();
		stack?.dispose();
		running.delete(logFile);
	};
	// Synchronous: it must also work from the `exit` event, where nothing asynchronous runs.
	const kill = () => {
		for (const stack of running.values()) stack.dispose();
		rmSync(logDir, { recursive: true, force: true });
	};
	process.once("exit", kill);

	const lending = { unmake: stop, idleMs: IDLE_MS };
	const shared = await startLeaseBroker("/stack", () => start("shared", []), lending);
	const tuned = await startLeaseBroker("/stack", () => start("tuned", tunedStackArgs()), lending);
	project.provide("sharedStackBroker", shared.url);
	project.provide("tunedStackBroker", tuned.url);
	return async () => {
		await Promise.all([shared.close(), tuned.close()]);
		kill();
		process.off("exit", kill);
	};
}
