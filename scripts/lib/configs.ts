/**
 * One source for configuration. Each Worker's committed `wrangler.jsonc` is its production
 * configuration: what `npm run deploy` and a plain `wrangler deploy` ship. Local development, the
 * tests and the benchmark run copies generated from it into `.wrangler/config/` (git-ignored),
 * changed only by the overrides in this file. test/node/config-envs.test.ts lists the differences
 * it allows, so a new override (or a binding lost on the way) fails the tests until it is
 * documented there and in docs/configuration.md.
 *
 * Configs are read with a JSONC parser (comments allowed), never edited as text.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import { applyEdits, modify, type ParseError, parse, printParseErrorCode } from "jsonc-parser";
import { z } from "zod";
import { root } from "./wrangler.ts";

/** Where generated configs go (under `.wrangler/`, which git ignores). */
export const generatedDir = path.join(root, ".wrangler/config");

/** Every Worker's production config, the status API first (the one a multi-config `wrangler dev` serves). */
export const workerConfigFiles = {
	status: "wrangler.jsonc",
	consumer: "workers/consumer/wrangler.jsonc",
	webhooks: "workers/webhooks/wrangler.jsonc",
} as const;
export type WorkerName = keyof typeof workerConfigFiles;
export const workerNames = Object.keys(workerConfigFiles) as WorkerName[];
export const productionConfigs: string[] = Object.values(workerConfigFiles);

// ── Local overrides (npm run dev, the benchmark) ────────────────────────────────────────────
/** Local R2 sends no notifications, and webhooks may go to loopback receivers (where the Worker has the var). */
const LOCAL_VARS = { DEPLOY_MODE: "local" } as const;
/**
 * Where a Worker has the `ai` binding: the model emulator answers instead (Workers AI needs a
 * login), playing the platform as it is today (shared/models/emulator-settings.ts, docs/models.md).
 */
export const EMULATOR_VARS = {
	MODEL_BACKEND: "emulator",
	EMULATOR_LATENCY_MS: "0",
	EMULATOR_GONE_MODELS: "",
	EMULATOR_RETIRED_MODELS: "@cf/unum/uform-gen2-qwen-500m,@cf/google/gemma-3-12b-it",
	EMULATOR_RETIRED_ERROR: "5028: This model was deprecated",
	EMULATOR_RATE_LIMITS: "Image-to-Text=720, Text Generation=300",
	EMULATOR_TIME_SCALE: "1",
	EMULATOR_FAULT_RATE: "0",
} as const;

/**
 * Crons do not fire under `wrangler dev`: `npm run dev` runs their sweeps through these named
 * entrypoints of the consumer and webhooks Workers, bound to the status Worker only locally
 * (`POST /v1/admin/sweep`, docs/recovery.md). Production has no such binding (the route answers 404).
 */
const LOCAL_RECOVERY_ENTRYPOINTS = [
	{ binding: "CONSUMER_RECOVERY", worker: "consumer", entrypoint: "ConsumerRecovery" },
	{ binding: "WEBHOOKS_RECOVERY", worker: "webhooks", entrypoint: "WebhooksRecovery" },
] as const;

const localServices = () =>
	LOCAL_RECOVERY_ENTRYPOINTS.map(({ binding, worker, entrypoint }) => ({
		binding,
		service: readConfig(workerConfigFiles[worker]).name,
		entrypoint,
	}));

// ── Test overrides (the vitest pool: every Worker in one harness isolate) ─────────────────────
const HARNESS = { name: "r2-captions-test", main: "test/harness.ts" } as const;
const TEST_VARS = {
	// Secrets, as plain vars: the pool has no .dev.vars.
	ADMIN_TOKEN: "test-admin-token",
	WEBHOOK_SECRET: "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItY2FsbGJhY2tz",
	WEBHOOK_SECRETS_KEY: "test-webhook-secrets-sealing-key",
	// Few, immediate retries keep the suite fast; backoff itself is tested on the computed delays.
	CAPTION_MAX_RETRIES: "2",
	RETRY_BASE_SECONDS: "0",
	RETRY_MAX_SECONDS: "0",
	WEBHOOK_MAX_RETRIES: "3",
	WEBHOOK_RETRY_BASE_SECONDS: "0",
	WEBHOOK_RETRY_MAX_SECONDS: "0",
	WEBHOOK_TIMEOUT_MS: "2000",
	// Pacing off; the rate-limiter tests turn it on per run.
	MODEL_RATE_LIMITS: "off",
	// Three objects a listing page, so that small test batches span several pages.
	BATCH_PAGE_SIZE: "3",
	// Quotas out of the way; the quota tests set low ones per request (test/status/quotas.test.ts).
	RATE_LIMIT_PER_MINUTE: "1000000",
	RATE_LIMIT_BURST: "100000",
	MAX_JOBS_IN_FLIGHT: "100000",
	MAX_OPEN_BATCHES_PER_KEY: "100000",
	// Every pool request comes without CF-Connecting-IP, so all count as one address; the limit's
	// own test sets a low one per request (test/status/auth-failure-limit.test.ts).
	AUTH_FAILURE_LIMIT_PER_MINUTE: "1000000",
	AUTH_FAILURE_BURST: "100000",
	// The event stream's keep-alive comment every second, not 15: its test waits for one.
	EVENTS_KEEPALIVE_SECONDS: "1",
} as const;
/**
 * Every queue consumer: what is on the queue is delivered at once (messages sent together still
 * come as one batch) instead of waiting a second for a fuller one, one batch at a time, retries at
 * once. A test that passes messages through the real queues (a batch's pages, its captions, a
 * retry) then waits no second per hop.
 */
const TEST_QUEUE_CONSUMER = { max_batch_timeout: 0, max_concurrency: 1, retry_delay: 0 } as const;
/**
 * max_retries per queue: the live queues' equal to the *_MAX_RETRIES vars above; the dead-letter
 * queues' few (production's caption-jobs-dlq retries for days: its tests step deliveries by hand,
 * test/consumer/dead-letter.test.ts).
 */
const TEST_MAX_RETRIES: Record<string, number> = {
	"caption-jobs": 2,
	"caption-batch-jobs": 2,
	"caption-jobs-dlq": 2,
	"webhook-deliveries": 3,
	"webhook-deliveries-dlq": 2,
	"batch-listing": 3,
};
/**
 * A real queue that nothing consumes: tests that step a batch's listing by hand send its page (and
 * caption) messages there, so that only the messages they deliver themselves are processed.
 */
const TEST_PRODUCERS = [{ binding: "HELD_MESSAGES", queue: "held-messages" }] as const;
/**
 * Deploy-only settings the harness has no use for: crons do not fire in the pool (tests call
 * `scheduled`), and the pool's fetch does not serve static assets (test/node/dashboard-assets.test.ts
 * checks them).
 */
const TEST_OMITTED = ["secrets", "triggers", "observability", "ai", "assets"] as const;

// ── Reading ─────────────────────────────────────────────────────────────────────────────────
const Binding = z.looseObject({ binding: z.string() });
const QueueConsumer = z.looseObject({
	queue: z.string(),
	max_batch_size: z.number(),
	max_batch_timeout: z.number(),
	max_retries: z.number(),
	max_concurrency: z.number(),
	retry_delay: z.number(),
	dead_letter_queue: z.string().optional(),
});

const D1Database = z.looseObject({
	binding: z.string(),
	database_name: z.string(),
	database_id: z.string(),
	migrations_dir: z.string().optional(),
});
type D1Database = z.infer<typeof D1Database>;
const Assets = z.looseObject({ directory: z.string() });
type Assets = z.infer<typeof Assets>;

/** The parts of a raw wrangler config this file reads or changes; the rest is carried as it is. */
export const RawConfig = z.looseObject({
	name: z.string(),
	main: z.string(),
	compatibility_date: z.string(),
	vars: z.record(z.string(), z.string()).default({}),
	secrets: z.object({ required: z.array(z.string()) }).optional(),
	ai: z.looseObject({ binding: z.string(), remote: z.boolean().optional() }).optional(),
	assets: Assets.optional(),
	build: z.looseObject({ command: z.string().optional(), watch_dir: z.array(z.string()).optional() }).optional(),
	d1_databases: z.array(D1Database).optional(),
	queues: z
		.looseObject({
			producers: z.array(Binding.extend({ queue: z.string() })).optional(),
			consumers: z.array(QueueConsumer).optional(),
		})
		.optional(),
});
export type RawConfig = z.infer<typeof RawConfig>;

function parseJsonc(file: string, text: string): unknown {
	const errors: ParseError[] = [];
	const value: unknown = parse(text, errors, { allowTrailingComma: true });
	const [first] = errors;
	if (first) throw new Error(`${file}: ${printParseErrorCode(first.error)} at offset ${first.offset}`);
	return value;
}

/**
 * A config as written, validated, with its paths (`main`, `migrations_dir`, `assets.directory`) made relative to the
 * repository root, so that configs from different folders can be compared and merged.
 */
export function readConfig(file: string): RawConfig {
	const config = RawConfig.parse(parseJsonc(file, readFileSync(path.join(root, file), "utf8")));
	const fromRoot = (p: string) => path.relative(root, path.resolve(root, path.dirname(file), p));
	const { $schema: _schema, ...rest } = config;
	return {
		...rest,
		main: fromRoot(config.main),
		assets: config.assets && { ...config.assets, directory: fromRoot(config.assets.directory) },
		d1_databases: config.d1_databases?.map((d) =>
			d.migrations_dir ? { ...d, migrations_dir: fromRoot(d.migrations_dir) } : d,
		),
	};
}

// ── Local and test configs ──────────────────────────────────────────────────────────────────
export interface LocalOptions {
	/** The real Workers AI (`npm run dev -- --remote-ai`): the `ai` binding stays, run remotely. */
	remoteAi?: boolean;
	/** Vars to set on top (`npm run dev -- --var NAME=value`, the benchmark), where the Worker has them. */
	vars?: Record<string, string>;
	/**
	 * `npm run dev -- --no-watch`: the Workers as they are at start, bundled again only when their
	 * config changes, not after each change to a source. wrangler dev has no such option: the
	 * configs get a custom build whose command does nothing (`exit 0`, in sh and in cmd.exe alike) and
	 * whose `watch_dir` is an empty folder, and wrangler bundles `main` once after it. Without it,
	 * wrangler runs esbuild's watch mode, which polls every source all the time: about 2.3
	 * CPU-seconds a minute for each running `npm run dev`, idle or not, against 0.2 (2026-12-06).
	 * The test suite's stacks, the soak's and the demo's run this way; a developer's does not.
	 */
	noWatch?: boolean;
}

/**
 * The vars that equal their queues' `max_retries` (the last delivery ends the job or the delivery as
 * `retries_exhausted`; config.test.ts checks the production values agree): a local `--var` of one
 * sets those queues' `max_retries` too, or a delivery beyond the queue's would be dead-lettered.
 */
const RETRY_VARS: Record<string, string[]> = {
	CAPTION_MAX_RETRIES: ["caption-jobs", "caption-batch-jobs"],
	WEBHOOK_MAX_RETRIES: ["webhook-deliveries"],
};

/** `config`'s queue consumers with `max_retries` from the RETRY_VARS given in `vars`. */
function retriesFromVars(config: RawConfig, vars: Record<string, string>): RawConfig["queues"] {
	const queues = config.queues;
	if (queues?.consumers === undefined) return queues;
	const retries = new Map<string, number>();
	for (const [name, names] of Object.entries(RETRY_VARS)) {
		const value = Number(vars[name]);
		if (name in vars && Number.isInteger(value) && value >= 0) for (const queue of names) retries.set(queue, value);
	}
	return {
		...queues,
		consumers: queues.consumers.map((c) => ({ ...c, max_retries: retries.get(c.queue) ?? c.max_retries })),
	};
}

/** A Worker's production config with the local overrides applied. */
export function localConfig(name: WorkerName, options: LocalOptions = {}): RawConfig {
	const { ai, ...production } = readConfig(workerConfigFiles[name]);
	const vars = { ...production.vars };
	for (const [key, value] of Object.entries(LOCAL_VARS)) if (key in vars) vars[key] = value;
	const config: RawConfig = { ...production, vars };
	if (ai && options.remoteAi) config.ai = { ...ai, remote: true };
	else if (ai) Object.assign(vars, EMULATOR_VARS);
	for (const [key, value] of Object.entries(options.vars ?? {})) if (key in vars) vars[key] = value;
	config.queues = retriesFromVars(config, options.vars ?? {});
	if (name === "status") config.services = localServices();
	return config;
}

/** What names an item of a list: its binding, name, queue or migration tag; a string names itself. */
const identity = (item: unknown): unknown => {
	const record = z.record(z.string(), z.unknown()).safeParse(item);
	return record.success ? (record.data.binding ?? record.data.name ?? record.data.queue ?? record.data.tag) : item;
};

/** Items of two binding lists, once each; two different items under one binding name are an error. */
function union(key: string, a: unknown[], b: unknown[]): unknown[] {
	const out = [...a];
	for (const item of b) {
		const same = out.find((o) => identity(o) === identity(item));
		if (same === undefined) out.push(item);
		else if (!isDeepStrictEqual(same, item))
			throw new Error(`${key}: two Workers define ${identity(item)} differently`);
	}
	return out;
}

/** Two Workers' values of one setting: lists are joined, objects merged key by key, anything else must agree. */
function merge(key: string, a: unknown, b: unknown): unknown {
	if (a === undefined) return b;
	if (Array.isArray(a) && Array.isArray(b)) return union(key, a, b);
	const objects = z.tuple([z.record(z.string(), z.unknown()), z.record(z.string(), z.unknown())]).safeParse([a, b]);
	if (objects.success) {
		const [x, y] = objects.data;
		const out = { ...x };
		for (const [k, v] of Object.entries(y)) out[k] = merge(`${key}.${k}`, x[k], v);
		return out;
	}
	if (!isDeepStrictEqual(a, b)) throw new Error(`${key}: two Workers set it differently`);
	return a;
}

const DurableObjects = z.looseObject({
	bindings: z.array(z.looseObject({ name: z.string(), script_name: z.string().optional() })),
});

/**
 * A Worker's Durable Object bindings as the harness has them: a binding to a class of another of
 * the project's Workers (`script_name`) is a binding to the harness's own class there.
 */
function harnessDurableObjects(value: unknown): unknown {
	const ours = new Set(workerNames.map((name) => readConfig(workerConfigFiles[name]).name));
	const objects = DurableObjects.parse(value);
	const bindings = objects.bindings.map(({ script_name, ...binding }) =>
		script_name !== undefined && !ours.has(script_name) ? { ...binding, script_name } : binding,
	);
	return { ...objects, bindings };
}

const Services = z.array(z.looseObject({ binding: z.string(), service: z.string() }));

/** A Worker's service bindings as the harness has them: one to another of the project's Workers is one to the harness. */
function harnessServices(value: unknown): unknown {
	const ours = new Set(workerNames.map((name) => readConfig(workerConfigFiles[name]).name));
	return Services.parse(value).map((s) => (ours.has(s.service) ? { ...s, service: HARNESS.name } : s));
}

/**
 * The test pool's config: every Worker's local config merged into the one harness Worker
 * (test/harness.ts), with the test overrides above.
 */
export function testConfig(): RawConfig {
	let merged: Record<string, unknown> = {};
	for (const name of workerNames) {
		// Name and entry point are the harness's.
		const { name: _name, main: _main, ...config }: Record<string, unknown> = localConfig(name);
		for (const key of TEST_OMITTED) delete config[key];
		if (config.durable_objects !== undefined) config.durable_objects = harnessDurableObjects(config.durable_objects);
		// The recovery entrypoints are the harness's own (test/harness.ts exports them).
		if (Array.isArray(config.services)) config.services = harnessServices(config.services);
		for (const [key, value] of Object.entries(config)) merged = { ...merged, [key]: merge(key, merged[key], value) };
	}
	const config = RawConfig.parse({ ...merged, ...HARNESS });
	const secrets = workerNames.flatMap((name) => readConfig(workerConfigFiles[name]).secrets?.required ?? []);
	for (const [key, value] of Object.entries(TEST_VARS)) {
		if (!(key in config.vars) && !secrets.includes(key)) throw new Error(`test override ${key} is no Worker's var`);
		config.vars[key] = value;
	}
	const consumers = config.queues?.consumers?.map((c) => ({
		...c,
		...TEST_QUEUE_CONSUMER,
		max_retries: TEST_MAX_RETRIES[c.queue] ?? c.max_retries,
	}));
	const producers = [...(config.queues?.producers ?? []), ...TEST_PRODUCERS];
	return { ...config, queues: { ...config.queues, producers, consumers } };
}

// ── Writing ─────────────────────────────────────────────────────────────────────────────────
/**
 * Writes a generated config to `file` (absolute), its paths made relative to the file's folder.
 * An unchanged file is not rewritten: a running `wrangler dev` reloads when its config changes.
 */
export function writeConfig(file: string, config: RawConfig, note: string): string {
	const dir = path.dirname(file);
	const fromHere = (p: string) => (path.isAbsolute(p) ? p : path.relative(dir, path.resolve(root, p)) || ".");
	const rebase = (d1: D1Database[] | undefined) =>
		d1?.map((d) => (d.migrations_dir ? { ...d, migrations_dir: fromHere(d.migrations_dir) } : d));
	const rebaseAssets = (assets: Assets | undefined) => assets && { ...assets, directory: fromHere(assets.directory) };
	const envs = z
		.record(z.string(), z.looseObject({ d1_databases: z.array(D1Database).optional(), assets: Assets.optional() }))
		.optional()
		.parse(config.env);
	const out = {
		...config,
		main: fromHere(config.main),
		build: config.build && { ...config.build, watch_dir: config.build.watch_dir?.map(fromHere) },
		assets: rebaseAssets(config.assets),
		d1_databases: rebase(config.d1_databases),
		env:
			envs &&
			Object.fromEntries(
				Object.entries(envs).map(([k, v]) => [
					k,
					{ ...v, d1_databases: rebase(v.d1_databases), assets: rebaseAssets(v.assets) },
				]),
			),
	};
	const json = JSON.stringify(out, null, "\t");
	const text = `// Generated by scripts/lib/configs.ts (${note}): do not edit; edit the Worker's wrangler.jsonc.\n${json}\n`;
	if (existsSync(file) && readFileSync(file, "utf8") === text) return file;
	// Written whole or not at all: a wrangler starting at the same moment never reads half a file.
	mkdirSync(dir, { recursive: true });
	const partial = `${file}.${process.pid}.tmp`;
	writeFileSync(partial, text);
	renameSync(partial, file);
	return file;
}

/**
 * `--no-watch`'s build (LocalOptions.noWatch): a command that does nothing, and an empty folder for
 * wrangler to watch, which it needs for a custom build (not the configs' own folder: wrangler writes
 * its temporary files under it, which would set off a build after every build).
 */
function idleBuild(folder: string): { command: string; watch_dir: string[] } {
	const idle = path.join(folder, "nothing-to-watch");
	mkdirSync(idle, { recursive: true });
	return { command: "exit 0", watch_dir: [path.relative(root, idle)] };
}

/**
 * Writes the local configs of every Worker; returns their paths relative to the root, status
 * first. A var in `options.vars` that no Worker has locally is an error (a typo).
 */
export function writeLocalConfigs(options: LocalOptions = {}): string[] {
	const configs = workerNames.map((name) => [name, localConfig(name, options)] as const);
	const known = new Set(configs.flatMap(([, c]) => Object.keys(c.vars)));
	const unknown = Object.keys(options.vars ?? {}).filter((k) => !known.has(k));
	if (unknown.length > 0)
		throw new Error(`no Worker has the var ${unknown.join(", ")}; local vars: ${[...known].join(", ")}`);
	const variant = options.remoteAi ? "remote-ai" : "local";
	// Extra vars get a folder of their own: another session's config stays as it is.
	const extra = Object.entries(options.vars ?? {})
		.map(([k, v]) => `${k}=${v}`)
		.join("&");
	// …and so do the configs of --no-watch (another session's `npm run dev` reads the others).
	const named = extra ? `${variant}-${Buffer.from(extra).toString("base64url").slice(0, 24)}` : variant;
	const folder = path.join(generatedDir, options.noWatch ? `${named}-no-watch` : named);
	const build = options.noWatch ? idleBuild(folder) : undefined;
	return configs.map(([name, config]) =>
		path.relative(root, writeConfig(path.join(folder, `${name}.jsonc`), { ...config, build }, `${name}, ${variant}`)),
	);
}

/** The test pool's config file (test/harness.ts as the one Worker). */
export const testConfigPath = path.join(generatedDir, "test.jsonc");
export const writeTestConfig = () => writeConfig(testConfigPath, testConfig(), "test pool");

/**
 * For `wrangler types`: a Worker's production config with its local config as the environment
 * `local`, so that its Env type covers both ways it runs (what only one has, such as the `AI`
 * binding or the emulator knobs, is optional).
 */
export function writeTypesConfig(name: WorkerName): string {
	const {
		name: _n,
		main: _m,
		compatibility_date: _c,
		migrations: _mi,
		triggers: _t,
		observability: _o,
		...local
	} = localConfig(name);
	const config = { ...readConfig(workerConfigFiles[name]), env: { local } };
	return writeConfig(path.join(generatedDir, "types", `${name}.jsonc`), config, `${name}, for wrangler types`);
}

// ── Editing the production config ───────────────────────────────────────────────────────────
/** Sets `database_id` of the D1 binding `binding` in a committed config, keeping its comments. */
export function setDatabaseId(file: string, binding: string, id: string): boolean {
	const full = path.join(root, file);
	const text = readFileSync(full, "utf8");
	const index = (readConfig(file).d1_databases ?? []).findIndex((d) => d.binding === binding);
	if (index < 0) throw new Error(`${file} has no D1 binding ${binding}`);
	const edits = modify(text, ["d1_databases", index, "database_id"], id, {
		formattingOptions: { insertSpaces: false, tabSize: 1 },
	});
	const updated = applyEdits(text, edits);
	if (updated === text) return false;
	writeFileSync(full, updated);
	return true;
}
