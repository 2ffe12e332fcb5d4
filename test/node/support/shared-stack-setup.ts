/**
 * The node project's global setup: one `npm run dev` stack with the default settings, shared by the
 * Node test files that need nothing else of a stack (test/node/support/shared-stack.ts; docs/testing.md
 * says which files may use it). Booting a stack costs seconds of CPU on every core, so files that can
 * share one do.
 *
 * No stack starts here: a loopback broker answers `POST /stack` by starting the stack the first time
 * it is asked (and waiting until it serves), so a run of Node files that do not use it boots none.
 * What is made here is the migrated state every fresh stack starts from (scripts/lib/migrated-state.ts),
 * once, before any file boots one.
 * The stack is always stopped: by the teardown after the run, and, when vitest exits without one
 * (Ctrl-C or SIGTERM end it through process.exit), by an exit handler that kills its process group.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { type DevStack, spawnDevStack } from "../../../scripts/lib/dev-stack.ts";
import { migratedTemplate } from "../../../scripts/lib/migrated-state.ts";
import { startOnceBroker } from "./once-broker.ts";
import type { SharedStackInfo } from "./shared-stack.ts";

export default async function setup(project: TestProject) {
	// Made here, once, before any file boots a stack on a copy of it (and cached between runs).
	await migratedTemplate();
	const logDir = mkdtempSync(path.join(tmpdir(), "r2-captions-shared-stack-"));
	const logFile = path.join(logDir, "npm-run-dev.log");
	let stack: DevStack | undefined;

	const start = async (): Promise<SharedStackInfo> => {
		stack = await spawnDevStack("shared", { logFile });
		await stack.ready();
		return { url: stack.url, token: stack.token, logFile };
	};
	// Synchronous: it must also work from the `exit` event, where nothing asynchronous runs.
	const kill = () => {
		stack?.dispose();
		rmSync(logDir, { recursive: true, force: true });
	};
	process.once("exit", kill);

	const broker = await startOnceBroker("/stack", start);
	project.provide("sharedStackBroker", broker.url);
	return async () => {
		broker.close();
		// Ctrl-C first, as a user stops it; whatever is left after the grace is killed.
		await stack?.stop();
		kill();
		process.off("exit", kill);
	};
}
