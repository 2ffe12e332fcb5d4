/**
 * For the demo: use the `npm run dev` server that answers on the URL, or start one on the
 * developer's own local state (and stop it again at the end, with the same Ctrl-C a user would give it).
 */
import path from "node:path";
import { spawnDevStack } from "./dev-stack.ts";
import { defaultPersistDir, root } from "./wrangler.ts";

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

	const port = Number(new URL(base).port || "80");
	const logFile = path.join(root, ".wrangler/demo-dev-server.log");
	console.log(
		`No server on ${base}: starting \`npm run dev -- --port ${port}\` (log: ${path.relative(root, logFile)})`,
	);
	const stack = await spawnDevStack("demo", {
		port,
		persistTo: defaultPersistDir,
		keepState: true,
		logFile,
	});
	try {
		await stack.ready(120_000);
	} catch (err) {
		stack.dispose();
		throw new Error(`npm run dev did not answer on ${base} within 2 minutes; see ${logFile}`, { cause: err });
	}
	return {
		started: true,
		async stop() {
			await stack.interrupt();
		},
	};
}
