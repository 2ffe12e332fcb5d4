/**
 * For the demo: use the `npm run dev` server that answers on the URL, or start one (and stop it
 * again at the end, with the same Ctrl-C a user would give it).
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import { root } from "./wrangler.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function answers(base: string): Promise<boolean> {
	return fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
		(r) => r.ok,
		() => false,
	);
}

export interface DevServer {
	/** Whether this process started it (and so stops it). */
	started: boolean;
	stop(): Promise<void>;
}

export async function useOrStartDevServer(base: string): Promise<DevServer> {
	if (await answers(base)) return { started: false, stop: async () => {} };

	const port = new URL(base).port || "80";
	const logFile = path.join(root, ".wrangler/demo-dev-server.log");
	mkdirSync(path.dirname(logFile), { recursive: true });
	console.log(
		`No server on ${base}: starting \`npm run dev -- --port ${port}\` (log: ${path.relative(root, logFile)})`,
	);
	const log = createWriteStream(logFile);
	const child = spawn(process.execPath, [path.join(root, "scripts/dev.ts"), "--port", port], {
		cwd: root,
		stdio: ["ignore", "pipe", "pipe"],
	});
	child.stdout.pipe(log);
	child.stderr.pipe(log);
	const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));

	const deadline = Date.now() + 120_000;
	while (!(await answers(base))) {
		if (child.exitCode !== null) throw new Error(`npm run dev exited (${child.exitCode}); see ${logFile}`);
		if (Date.now() > deadline) {
			child.kill("SIGINT");
			throw new Error(`npm run dev did not answer on ${base} within 2 minutes; see ${logFile}`);
		}
		await sleep(500);
	}
	return {
		started: true,
		async stop() {
			child.kill("SIGINT");
			await exited;
			log.end();
		},
	};
}
