/**
 * `npm run dev`: the whole service on one machine. Creates `.dev.vars` when missing, applies the
 * D1 migrations to local state, writes each Worker's local config (its production wrangler.jsonc
 * with the local overrides of scripts/lib/configs.ts), then runs every Worker in one multi-config
 * `wrangler dev` (local R2, D1, Queues, Images, and the model emulator) with the status API on
 * http://localhost:8787.
 *
 *   npm run dev                       offline, model emulator
 *   npm run dev -- --remote-ai        the real Workers AI (needs `wrangler login`)
 *   npm run dev -- --port 8790 --persist-to /tmp/state
 *   npm run dev -- --port 8790 --inspector-port 9300   (two at once: each its own debugger port)
 *   npm run dev -- --var EMULATOR_GONE_MODELS=@cf/unum/uform-gen2-qwen-500m   (any local var, repeatable)
 *   npm run dev -- --sweep-every 60 --stale-after 300   (the local recovery sweep, in seconds)
 *   npm run dev -- --no-watch         no new bundle after a source changes (the tests', soak's and demo's stacks)
 *
 * Crons do not fire under `wrangler dev`, so this process runs their recovery sweeps itself
 * (scripts/lib/dev-recovery.ts): at start, re-sending at once whatever a previous run (stopped or
 * killed) left in flight, and then periodically.
 *
 * Ctrl-C (SIGINT), SIGTERM and SIGHUP are passed on to wrangler, which stops workerd; this
 * process exits once wrangler has.
 */
import { createServer } from "node:net";
import path from "node:path";
import { scriptArgs } from "./lib/args.ts";
import { writeLocalConfigs } from "./lib/configs.ts";
import { readyBanner } from "./lib/dev-banner.ts";
import { startRecovery } from "./lib/dev-recovery.ts";
import { ensureDevVars, readDevVars } from "./lib/dev-vars.ts";
import { markedMigrated, markMigrated, migrationsKey } from "./lib/migrated-state.ts";
import { defaultPersistDir, migrateLocal, root, spawnWrangler } from "./lib/wrangler.ts";

const { values: args } = scriptArgs("npm run dev", {
	options: {
		port: { type: "string", default: process.env.PORT ?? "8787" },
		"persist-to": { type: "string", default: defaultPersistDir },
		"remote-ai": { type: "boolean", default: process.env.REMOTE_AI === "1" },
		// wrangler dev re-bundles after each change to a source, and polls the sources to find one
		// (scripts/lib/configs.ts, LocalOptions.noWatch).
		"no-watch": { type: "boolean", default: false },
		var: { type: "string", multiple: true, default: [] },
		"sweep-every": { type: "string", default: "60" },
		"stale-after": { type: "string", default: "300" },
		// wrangler's default looks for a free port from 9229 when it starts: two starting at the same
		// moment can both pick the same one, and the second then stops ("Address already in use").
		"inspector-port": { type: "string" },
	},
});

/** `--var NAME=value` pairs (a var of whichever Worker has it; an unknown name is an error). */
function parseVars(pairs: string[]): Record<string, string> {
	return Object.fromEntries(
		pairs.map((pair) => {
			const at = pair.indexOf("=");
			if (at < 1) throw new Error(`--var ${pair}: expected NAME=value`);
			return [pair.slice(0, at), pair.slice(at + 1)];
		}),
	);
}

const port = Number(args.port);
const persistTo = path.resolve(root, args["persist-to"]);

/** Fails early with a useful message instead of wrangler's choice of another port. */
function assertPortFree(p: number): Promise<void> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once("error", () =>
			reject(
				new Error(
					`port ${p} is in use (another \`npm run dev\`?). Stop it, or choose another port: npm run dev -- --port ${p + 1}`,
				),
			),
		);
		probe.listen(p, () => probe.close(() => resolve()));
	});
}

/** Seconds given on the command line, as milliseconds. */
function seconds(name: string, value: string): number {
	const n = Number(value);
	if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${value}: expected a positive number of seconds`);
	return n * 1000;
}

/**
 * Prints where to go once the status API answers (wrangler's own banner scrolls away fast).
 * Resolves whether it answered.
 */
async function announceWhenReady(url: string, token: string, stopped: () => boolean): Promise<boolean> {
	for (let i = 0; i < 600 && !stopped(); i++) {
		const ok = await fetch(`${url}/healthz`).then(
			(r) => r.ok,
			() => false,
		);
		if (ok) {
			console.log(readyBanner({ url, token, remoteAi: args["remote-ai"] }));
			return true;
		}
		await new Promise((r) => setTimeout(r, 500));
	}
	return false;
}

async function main(): Promise<number> {
	// Anything last touched before this moment belongs to a previous run (see dev-recovery.ts).
	const startedAt = Date.now();
	const everyMs = seconds("sweep-every", args["sweep-every"]);
	const staleAfterMs = seconds("stale-after", args["stale-after"]);
	const bootstrapped = ensureDevVars();
	if (bootstrapped) console.log(bootstrapped);
	const secrets = readDevVars();
	await assertPortFree(port);
	// A state migrated by an earlier start, or a test's copy of the migrated template, has nothing to
	// apply while no migration is added or changed (scripts/lib/migrated-state.ts).
	// The migrations' name, taken once and before the step (markMigrated says why).
	const migrations = migrationsKey();
	if (markedMigrated(persistTo, migrations))
		console.log("D1 schema is up to date (local: migrated before, no migration added since).");
	else {
		await migrateLocal(persistTo);
		markMigrated(persistTo, migrations);
	}

	const configs = writeLocalConfigs({
		remoteAi: args["remote-ai"],
		vars: parseVars(args.var),
		noWatch: args["no-watch"],
	});
	const wranglerArgs = ["dev", ...configs.flatMap((c) => ["-c", c])];
	wranglerArgs.push("--port", String(port), "--persist-to", persistTo);
	if (args["inspector-port"] !== undefined) wranglerArgs.push("--inspector-port", args["inspector-port"]);

	const child = spawnWrangler(wranglerArgs, { stdio: "inherit", env: { ...process.env, ...secrets } });
	let stopping = false;
	const forward = (signal: NodeJS.Signals) => {
		stopping = true;
		// In a terminal, Ctrl-C reaches wrangler directly too; passing it on covers `kill <pid>`,
		// npm's own forwarding, and test runners that signal only this process.
		if (child.exitCode === null) child.kill(signal);
	};
	for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, forward);

	const url = `http://localhost:${port}`;
	const token = secrets.ADMIN_TOKEN ?? "<ADMIN_TOKEN>";
	const ready = announceWhenReady(url, token, () => stopping);
	const recovery = startRecovery(
		{ url, token, restartedAt: startedAt, everyMs, staleAfterMs, log: (line) => console.log(`[npm run dev] ${line}`) },
		ready,
	);

	const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
		child.on("exit", (c, s) => resolve([c, s])),
	);
	recovery.stop();
	// A stop the user asked for is a clean exit, whatever code wrangler chose on the signal.
	if (stopping) return 0;
	if (signal) console.error(`wrangler stopped by ${signal}`);
	return code ?? 1;
}

main().then(
	(code) => process.exit(code),
	(err: unknown) => {
		console.error(`npm run dev: ${err instanceof Error ? err.message : String(err)}`);
		process.exit(1);
	},
);
