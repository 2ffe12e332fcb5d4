/**
 * A real local stack for the benchmark: `wrangler dev` running the status Worker and a consumer
 * (the real one or the naive baseline) on a free loopback port, with its own temporary state
 * directory (D1 migrated first), so every scenario starts from an empty bucket, queue and table.
 *
 * Each Worker runs from a generated config: its local config (scripts/lib/configs.ts) pointing
 * at a prebuilt bundle, with the scenario's vars (emulator latency, rate limits) set in it, since
 * auxiliary Workers of a multi-config `wrangler dev` do not receive `--var`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { localConfig, type RawConfig, readConfig, workerConfigFiles, writeConfig } from "../scripts/lib/configs.ts";
import { startStack as startLocalStack } from "../scripts/lib/dev-stack.ts";
import { seedMigratedState } from "../scripts/lib/migrated-state.ts";

export const ROOT = path.resolve(import.meta.dirname, "..");
const WRANGLER = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

export type ConsumerKind = "real" | "naive";

const NAIVE_CONFIG = "bench/naive-consumer/wrangler.jsonc";
const CONSUMER_CONFIG: Record<ConsumerKind, string> = { real: workerConfigFiles.consumer, naive: NAIVE_CONFIG };

export interface StackOptions {
	consumer: ConsumerKind;
	/** Consumer variables to override, e.g. { EMULATOR_LATENCY_MS: "1000" }. */
	vars?: Record<string, string>;
	/** Reuse this state directory (already migrated and seeded) instead of a fresh one. */
	persistTo?: string;
	/** Where logs and generated configs go. */
	workDir: string;
	/** The bundles made by bundleWorkers() (or bundle(), e.g. metered entry points). */
	bundles: Record<"status" | ConsumerKind, string>;
	/** Also run the webhooks Worker, from this bundle (the pipeline's job events are then consumed). */
	webhooksBundle?: string;
}

export interface Stack {
	url: string;
	token: string;
	persistTo: string;
	/** The wrangler (Node) process: it also runs the local Images binding (sharp). */
	wranglerPid: number;
	/** The workerd process that runs the Workers' isolates, D1, R2 and the queues. */
	workerdPid: number;
	/** wrangler's inspector (Chrome DevTools protocol): one target per Worker isolate, at /json. */
	inspectorPort: number;
	/** wrangler's output: Worker logs and one `QUEUE caption-jobs n/m (ms)` line per batch. */
	logPath: string;
	stop(): Promise<void>;
}

/** Runs wrangler to completion (migrations, d1 execute); throws with its output on failure. */
export async function wrangler(args: string[], timeoutMs = 300_000): Promise<string> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [WRANGLER, ...args], { cwd: ROOT, env: { ...process.env, CI: "1" } });
		let output = "";
		child.stdout.on("data", (d: Buffer) => {
			output += d.toString();
		});
		child.stderr.on("data", (d: Buffer) => {
			output += d.toString();
		});
		const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
		child.on("close", (code) => {
			clearTimeout(timer);
			if (code === 0) resolve(output);
			else reject(new Error(`wrangler ${args.join(" ")} exited ${code}:\n${output.slice(-4000)}`));
		});
	});
}

/**
 * A fresh state directory with the D1 migrations applied, as `npm run dev` would have it: a copy of
 * the migrated template (scripts/lib/migrated-state.ts), the same database that applying them
 * makes, without the 10 s of CPU that `wrangler d1 migrations apply` takes on an empty one.
 */
export async function migratedState(dir: string): Promise<string> {
	await rm(dir, { recursive: true, force: true });
	await mkdir(dir, { recursive: true });
	await seedMigratedState(dir);
	return dir;
}

/**
 * Bundles the status Worker and both consumers once (`wrangler deploy --dry-run --outdir`), so the
 * code under test is fixed for the whole run: `wrangler dev` reloads when a source file changes,
 * and a reload drops the local queue's in-memory messages mid-scenario.
 */
export async function bundleWorkers(workDir: string): Promise<Record<"status" | ConsumerKind, string>> {
	const configs = { status: workerConfigFiles.status, ...CONSUMER_CONFIG };
	const out: Partial<Record<"status" | ConsumerKind, string>> = {};
	for (const [name, config] of Object.entries(configs) as ["status" | ConsumerKind, string][]) {
		out[name] = await bundle(config, path.join(workDir, "bundles", name));
	}
	return out as Record<"status" | ConsumerKind, string>;
}

/** Every Worker's production config (and the naive baseline's), for bundle() and the bench's seeding. */
export const WORKER_CONFIGS = {
	status: workerConfigFiles.status,
	consumer: workerConfigFiles.consumer,
	naive: NAIVE_CONFIG,
	webhooks: workerConfigFiles.webhooks,
} as const;

/**
 * Bundles a Worker (`wrangler deploy --dry-run --outdir`) with the bindings of `config`; `entry`
 * replaces the config's `main` (e.g. a metered entry point). Returns the bundle's path.
 */
export async function bundle(config: string, outDir: string, entry?: string): Promise<string> {
	await rm(outDir, { recursive: true, force: true });
	await wrangler(["deploy", ...(entry ? [entry] : []), "--dry-run", "--outdir", outDir, "-c", config]);
	return path.join(outDir, entry ? `${path.basename(entry, ".ts")}.js` : "index.js");
}

/** Seals webhook secrets in the bench stack (the status and webhooks Workers share it). */
const BENCH_SEALING_KEY = "bench-webhook-secrets-sealing-key";

/** The webhooks Worker's local config; locally its secret is a plain var (there is no .dev.vars). */
function webhooksConfig(): RawConfig {
	const { secrets: _secrets, ...config } = localConfig("webhooks");
	return {
		...config,
		vars: {
			...config.vars,
			WEBHOOK_SECRET: "whsec_YmVuY2gtd2ViaG9vay1zZWNyZXQ=",
			WEBHOOK_SECRETS_KEY: BENCH_SEALING_KEY,
		},
	};
}

/**
 * The naive baseline's config with the real consumer's caption-jobs consumer settings, so that
 * only the code differs; of `vars`, it takes those it has.
 */
function naiveConfig(vars: Record<string, string>): RawConfig {
	const naive = readConfig(NAIVE_CONFIG);
	const real = readConfig(workerConfigFiles.consumer);
	const consumers = real.queues?.consumers?.filter((c) => c.queue === "caption-jobs");
	for (const [key, value] of Object.entries(vars)) if (key in naive.vars) naive.vars[key] = value;
	return { ...naive, queues: { consumers } };
}

/** A Worker's local config that runs `bundle` as it is (no bundling by wrangler dev). */
function bundleConfig(config: RawConfig, bundle: string, target: string): string {
	return writeConfig(target, { ...config, main: bundle, no_bundle: true }, "benchmark");
}

async function childrenOf(pid: number): Promise<number[]> {
	const out: number[] = [];
	for (const entry of await readdir("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = await readFile(`/proc/${entry}/stat`, "utf8");
			// Field 4 (after the parenthesised command) is the parent pid.
			const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			if (ppid === pid) out.push(Number(entry));
		} catch {
			// The process ended while we looked.
		}
	}
	return out;
}

/**
 * The workerd process under `root` that runs the Workers (and its parent, the Node process running
 * Miniflare). wrangler dev starts two: a small one for its proxy in front of the Workers, and the
 * one with the Workers' isolates, D1, R2 and the queues, which is the one given an inspector.
 */
async function findWorkerd(root: number): Promise<{ workerd: number; parent: number }> {
	const queue: [number, number][] = [[root, root]];
	const found: { workerd: number; parent: number; inspected: boolean }[] = [];
	for (let i = 0; i < queue.length && i < 200; i++) {
		const [pid, parent] = queue[i] as [number, number];
		const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
		if (comm.trim() === "workerd") {
			const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
			found.push({ workerd: pid, parent, inspected: cmdline.includes("--inspector-addr") });
		}
		for (const child of await childrenOf(pid)) queue.push([child, pid]);
	}
	const chosen = found.find((f) => f.inspected) ?? found[0];
	if (!chosen) throw new Error("workerd process not found under wrangler");
	return { workerd: chosen.workerd, parent: chosen.parent };
}

export async function startStack(options: StackOptions): Promise<Stack> {
	await mkdir(options.workDir, { recursive: true });
	const persistTo = options.persistTo ?? (await migratedState(path.join(options.workDir, "state")));
	const vars = options.vars ?? {};
	const unknown = Object.keys(vars).filter((k) => !(k in localConfig("consumer").vars));
	if (unknown.length > 0) throw new Error(`the consumer has no var ${unknown.join(", ")}`);
	// The status Worker takes the vars it shares with the consumer (MODEL_CHAIN, for GET /v1/models).
	const statusConfig = bundleConfig(
		localConfig("status", { vars }),
		options.bundles.status,
		path.join(options.workDir, "status.wrangler.jsonc"),
	);
	const consumerConfig = bundleConfig(
		options.consumer === "real" ? localConfig("consumer", { vars }) : naiveConfig(vars),
		options.bundles[options.consumer],
		path.join(options.workDir, `${options.consumer}-consumer.wrangler.jsonc`),
	);
	const webhooks = options.webhooksBundle
		? [
				"-c",
				bundleConfig(webhooksConfig(), options.webhooksBundle, path.join(options.workDir, "webhooks.wrangler.jsonc")),
			]
		: [];
	const token = `bench-${randomBytes(12).toString("hex")}`;
	const logPath = path.join(options.workDir, `wrangler-${options.consumer}-${Date.now()}.log`);
	let inspectorPort = 0;
	const stack = await startLocalStack({
		persistTo,
		// The state is the caller's (a scenario may start again on it).
		keepState: true,
		logFile: logPath,
		host: "127.0.0.1",
		token,
		env: { CI: "1", WRANGLER_SEND_METRICS: "false" },
		command: (port, debuggerPort) => {
			inspectorPort = debuggerPort;
			return [
				process.execPath,
				[
					WRANGLER,
					"dev",
					"-c",
					statusConfig,
					"-c",
					consumerConfig,
					...webhooks,
					"--ip",
					"127.0.0.1",
					"--port",
					String(port),
					"--inspector-port",
					String(inspectorPort),
					"--persist-to",
					persistTo,
					"--var",
					`ADMIN_TOKEN:${token}`,
					"--var",
					`WEBHOOK_SECRETS_KEY:${BENCH_SEALING_KEY}`,
					"--show-interactive-dev-session=false",
				],
			];
		},
	});
	const stop = () => stack.stop(10_000);
	try {
		await stack.ready(120_000);
		const found = await findWorkerd(stack.server.pid ?? 0);
		return {
			url: stack.url,
			token,
			persistTo,
			wranglerPid: found.parent,
			workerdPid: found.workerd,
			inspectorPort,
			logPath,
			stop,
		};
	} catch (err) {
		await stop();
		throw err;
	}
}

export const hasState = (dir: string) => existsSync(path.join(dir, "v3"));
