/**
 * The one way the repository starts a local stack outside `npm run dev` itself: the Node tests, the
 * soak and the demo run `npm run dev` as a user starts it (every Worker in one `wrangler dev`), on a
 * free port, with a state directory and a dev registry of its own, so a developer's running server,
 * its local data and other stacks are left alone. The benchmark runs `wrangler dev` on prebuilt
 * bundles (bench/stack.ts) through the same starter, startStack().
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { adminToken } from "./dev-vars.ts";
import { seedMigratedState } from "./migrated-state.ts";
import { root } from "./wrangler.ts";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A port nothing listens on now, below every OS's ephemeral range (Linux from 32768, macOS and
 * Windows from 49152). A port the OS picks (listen on 0) is one of the range it hands out for every
 * other socket too (a booting stack's workerd, every outgoing connection), so another socket can
 * take it between this probe and the stack's own bind.
 */
export async function freePort(): Promise<number> {
	for (let i = 0; i < 50; i++) {
		const p = 20_000 + Math.floor(Math.random() * 12_000);
		if (await portIsFree(p)) return p;
	}
	return osPort();
}

function osPort(): Promise<number> {
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

export const portIsFree = (p: number) =>
	new Promise<boolean>((resolve) => {
		const probe = createServer();
		probe.once("error", () => resolve(false));
		probe.listen(p, () => probe.close(() => resolve(true)));
	});

/** Whether any process of the group led by `pid` (npm, the launcher, wrangler, workerd) lives. */
export function groupAlive(pid: number): boolean {
	try {
		process.kill(-pid, 0);
		return true;
	} catch {
		return false;
	}
}

/** Polls `probe` until it gives a value (errors count as not yet); throws with `context()` on timeout. */
export async function until<T>(
	what: string,
	deadlineMs: number,
	probe: () => Promise<T | undefined>,
	context: () => string = () => "",
): Promise<T> {
	const deadline = Date.now() + deadlineMs;
	while (Date.now() < deadline) {
		const value = await probe().catch(() => undefined);
		if (value !== undefined) return value;
		await sleep(250);
	}
	throw new Error(`timed out waiting for ${what}\n${context()}`);
}

export interface DevStack {
	/** Where it serves; read it after `ready()`, which may have started it again on another port. */
	readonly url: string;
	/** The local state directory (pass it to another spawnDevStack to restart on the same state). */
	persistTo: string;
	/** The admin token the server accepts (ADMIN_TOKEN of .dev.vars). */
	token: string;
	readonly port: number;
	readonly server: ChildProcess;
	readonly exited: Promise<number | null>;
	/** Everything `npm run dev` printed so far (wrangler logs every request). */
	output(): string;
	/** Waits until `/healthz` answers. */
	ready(deadlineMs?: number): Promise<void>;
	/** Ctrl-C, as a user stops it (SIGINT to the process group), and waits until `npm run dev` exits. */
	interrupt(): Promise<number | null>;
	/** Ctrl-C, then SIGKILL to whatever of the process group is left after `graceMs`. */
	stop(graceMs?: number): Promise<void>;
	/** SIGKILLs the whole process group (npm, the launcher, wrangler, workerd) and waits until none is left. */
	kill(): Promise<void>;
	/** Kills whatever is left of the process group and removes the state directory (unless `keepState`). */
	dispose(): void;
}

export interface DevStackOptions {
	/** Local state to start on (a previous stack's `persistTo`); a fresh temporary directory otherwise. */
	persistTo?: string;
	/** Leave the state directory in place on dispose() (e.g. the developer's own `.wrangler/state`). */
	keepState?: boolean;
	/**
	 * Without `persistTo`: start on an empty state directory, whose D1 migrations `npm run dev`
	 * applies itself (as on a fresh clone), instead of a copy of the migrated template
	 * (scripts/lib/migrated-state.ts), which spares that step's seconds of CPU.
	 */
	unmigrated?: boolean;
	/** More `npm run dev` arguments, e.g. `--var EMULATOR_LATENCY_MS=200`. */
	args?: string[];
	/**
	 * Bundle again after a change to a source, as a developer's `npm run dev` does; off by default
	 * (`--no-watch`): no test, soak or demo edits the sources while its stack runs, and
	 * watching costs each stack about 2.3 CPU-seconds a minute (scripts/lib/configs.ts).
	 */
	watch?: boolean;
	/** The port to serve on; a free one otherwise. */
	port?: number;
	/** Write what `npm run dev` prints to this file instead of keeping it in memory (long runs). */
	logFile?: string;
}

/** Starts `npm run dev` (see startStack) on its own port, state directory and dev registry. */
export async function spawnDevStack(name: string, options: DevStackOptions = {}): Promise<DevStack> {
	const persistTo = options.persistTo ?? mkdtempSync(path.join(tmpdir(), `r2-captions-${name}-`));
	if (options.persistTo === undefined && !options.unmigrated) await seedMigratedState(persistTo);
	return startStack({
		...options,
		persistTo,
		command: (port, inspectorPort) => [
			"npm",
			[
				"run",
				"dev",
				"--",
				"--port",
				String(port),
				"--inspector-port",
				String(inspectorPort),
				"--persist-to",
				persistTo,
				...(options.watch ? [] : ["--no-watch"]),
				...(options.args ?? []),
			],
		],
	});
}

export interface StackOptions {
	/**
	 * The program and arguments that serve the status API on `port` (`npm run dev`, or `wrangler dev`
	 * itself), with wrangler's debugger on `inspectorPort`: wrangler's own choice, the first free port
	 * from 9229 when it starts, races with every other stack starting at the same moment (both take
	 * the same port and one stops).
	 */
	command: (port: number, inspectorPort: number) => Promise<[string, string[]]> | [string, string[]];
	/** The local state directory it serves from. */
	persistTo: string;
	keepState?: boolean | undefined;
	port?: number | undefined;
	logFile?: string | undefined;
	/** The host in its URL (`localhost` unless it listens on one address only). */
	host?: string;
	/** The admin token it accepts (ADMIN_TOKEN of .dev.vars unless the command sets another). */
	token?: string;
	/** More environment for the command. */
	env?: Record<string, string>;
}

/**
 * The one way the repository starts a local stack: `command` in its own process group (as a
 * terminal's foreground job), with a dev registry of its own; returns at once. When the port it was
 * given (or one wrangler picks for a Worker's internal socket) is taken by the time workerd binds
 * it, another process having been quicker, `ready()` starts it again on a fresh port: a free port
 * can only be asked for, not held.
 */
export async function startStack(options: StackOptions): Promise<DevStack> {
	const { persistTo } = options;
	const host = options.host ?? "localhost";
	let output = "";
	const log = options.logFile ? openLog(options.logFile) : undefined;
	const start = async (port: number) => {
		const [command, args] = await options.command(port, await freePort());
		const server = spawn(command, args, {
			cwd: root,
			detached: true,
			stdio: ["ignore", "pipe", "pipe"],
			// A registry of its own: wrangler's shared dev registry routes queue messages that have no
			// consumer in one `wrangler dev` session to another session's consumer.
			env: {
				...process.env,
				NO_COLOR: "1",
				...options.env,
				WRANGLER_REGISTRY_PATH: path.join(persistTo, "registry"),
			},
		});
		for (const stream of [server.stdout, server.stderr]) {
			if (log) stream?.pipe(log, { end: false });
			else
				stream?.on("data", (c: Buffer) => {
					output += c;
				});
		}
		if (log) output = `(see ${options.logFile})`;
		const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
		let done = false;
		void exited.then(() => {
			done = true;
		});
		return { port, url: `http://${host}:${port}`, server, exited, hasExited: () => done };
	};
	let run = await start(options.port ?? (await freePort()));
	const printed = () => (log ? readLog(options.logFile) : output);
	const portTaken = () => /Address already in use/.test(printed());
	// Another stack that took the same port first answers /healthz too: only our wrangler's own
	// "Ready on …:<port>" says that the server answering is this one.
	const servesPort = () => new RegExp(`Ready on https?://\\S+:${run.port}\\b`).test(printed());
	const stack: DevStack = {
		get url() {
			return run.url;
		},
		get port() {
			return run.port;
		},
		get server() {
			return run.server;
		},
		get exited() {
			return run.exited;
		},
		persistTo,
		token: options.token ?? adminToken(),
		output: () => output,
		async ready(deadlineMs = 120_000) {
			const deadline = Date.now() + deadlineMs;
			for (let restarts = 0; ; restarts++) {
				const state = await until(
					"GET /healthz",
					deadline - Date.now(),
					async () => {
						if (run.hasExited()) return "exited" as const;
						return (await fetch(`${run.url}/healthz`)).ok && servesPort() ? ("up" as const) : undefined;
					},
					() => `--- output ---\n${output.slice(-4000)}`,
				);
				if (state === "up") return;
				if (restarts >= 3 || options.port !== undefined || !portTaken()) {
					throw new Error(`the stack exited before serving\n--- output ---\n${output.slice(-4000)}`);
				}
				if (!log) output += "\n--- a port was taken: started again on another ---\n";
				run = await start(await freePort());
			}
		},
		async interrupt() {
			if (run.server.pid !== undefined && groupAlive(run.server.pid)) process.kill(-run.server.pid, "SIGINT");
			return run.exited;
		},
		async stop(graceMs = 10_000) {
			if (run.hasExited() && (run.server.pid === undefined || !groupAlive(run.server.pid))) return;
			// The grace's timer is cleared once the stack has stopped: left running, it kept the caller's
			// process (vitest's, after the node project's teardown) alive for the rest of the grace.
			let grace: NodeJS.Timeout | undefined;
			const stopped = await Promise.race([
				stack.interrupt().then(() => true),
				new Promise<false>((resolve) => {
					grace = setTimeout(() => resolve(false), graceMs);
				}),
			]);
			clearTimeout(grace);
			if (!stopped || (run.server.pid !== undefined && groupAlive(run.server.pid))) await stack.kill();
		},
		async kill() {
			const pid = run.server.pid;
			if (pid === undefined) return;
			if (groupAlive(pid)) process.kill(-pid, "SIGKILL");
			await until("every process of the stack to die", 15_000, async () => (groupAlive(pid) ? undefined : true));
		},
		dispose() {
			if (run.server.pid && groupAlive(run.server.pid)) process.kill(-run.server.pid, "SIGKILL");
			if (!options.keepState) rmSync(persistTo, { recursive: true, force: true });
		},
	};
	return stack;
}

function openLog(file: string) {
	mkdirSync(path.dirname(file), { recursive: true });
	return createWriteStream(file, { flags: "a" });
}

const readLog = (file: string | undefined) => (file ? readFileSync(file, "utf8") : "");
