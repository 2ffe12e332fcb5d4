/**
 * Checks on the repository itself that no runtime test can see: the lock file installs on every
 * platform a developer uses, the consumer settings the code reads agree with the queue settings
 * wrangler deploys, and the status Worker lists the chain the consumer runs.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { productionConfigs, testConfigPath, workerConfigFiles, writeTestConfig } from "../../scripts/lib/configs.ts";
import {
	DeployConfig,
	readDeployConfig,
	readResolvedConfig,
	readWorkerConfig,
} from "../../scripts/lib/worker-config.ts";
import { deadLetterOutageDelay, MAX_DELAY_SECONDS } from "../../shared/queue/delays.ts";

const root = path.join(import.meta.dirname, "../..");

describe("package-lock.json", () => {
	const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8")) as {
		packages: Record<string, { version?: string; os?: string[] }>;
	};
	const names = Object.keys(lock.packages);

	// Native binaries come as one optional package per platform; `npm ci` on a Mac or a Windows
	// machine needs their entries in the lock even though Linux never installs them.
	it.each([
		["workerd", /@cloudflare\/workerd-(darwin-arm64|darwin-64|windows-64|linux-64)$/, 4],
		["esbuild", /@esbuild\/(darwin-arm64|darwin-x64|win32-x64|linux-x64)$/, 4],
		["biome", /@biomejs\/cli-(darwin-arm64|darwin-x64|win32-x64|linux-x64)$/, 4],
		["sharp", /@img\/sharp-(darwin-arm64|darwin-x64|win32-x64|linux-x64)$/, 4],
		["rolldown", /@rolldown\/binding-(darwin-arm64|darwin-x64|win32-x64-msvc|linux-x64-gnu)$/, 4],
	])("has the %s binaries for macOS, Windows and Linux", (_name, pattern, count) => {
		expect(names.filter((n) => pattern.test(n))).toHaveLength(count);
	});

	// The lock always holds exact versions; what can drift is package.json (a range lets the next
	// `npm install` move) or a lock that no longer matches it.
	it("pins every dependency to one exact version, the one the lock installs, and the verified toolchain", () => {
		const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
			dependencies: Record<string, string>;
			devDependencies: Record<string, string>;
		};
		// An alias (`"typescript-native": "npm:typescript@7.0.2"`) pins the version after its last `@`.
		const declared = Object.fromEntries(
			Object.entries({ ...pkg.dependencies, ...pkg.devDependencies }).map(([name, spec]) => [
				name,
				spec.startsWith("npm:") ? spec.slice(spec.lastIndexOf("@") + 1) : spec,
			]),
		);
		const installed = Object.fromEntries(
			Object.keys(declared).map((name) => [name, lock.packages[`node_modules/${name}`]?.version]),
		);
		expect(declared).toEqual(installed);
		expect(declared).toMatchObject({ wrangler: "4.155.0", "@cloudflare/vitest-plugin": "1.4.10" });
		expect(declared.node).toMatch(/^22\.\d+\.\d+$/);
	});
});

describe("consumer settings", () => {
	writeTestConfig();
	// The batch lane is the same work as caption-jobs on another queue: the same settings, the same
	// dead-letter queue, so a batch's job gives up and dead-letters exactly as an upload's does.
	it.each([workerConfigFiles.consumer, testConfigPath])(
		"%s: caption-batch-jobs has caption-jobs's settings and dead-letter queue",
		(file) => {
			const consumers = readWorkerConfig(file).queues.consumers ?? [];
			const interactive = consumers.find((c) => c.queue === "caption-jobs");
			const batch = consumers.find((c) => c.queue === "caption-batch-jobs");
			expect(batch).toEqual({ ...interactive, queue: "caption-batch-jobs" });
		},
	);
	// The code gives up on the delivery after the queue's last retry; the two numbers must agree.
	it.each([
		[workerConfigFiles.consumer, "caption-jobs", "CAPTION_MAX_RETRIES"],
		[workerConfigFiles.webhooks, "webhook-deliveries", "WEBHOOK_MAX_RETRIES"],
		[testConfigPath, "caption-jobs", "CAPTION_MAX_RETRIES"],
		[testConfigPath, "webhook-deliveries", "WEBHOOK_MAX_RETRIES"],
	])(
		"%s: %s's max_retries equals %s, it has a dead-letter queue, every setting is explicit",
		(file, queue, setting) => {
			const config = readWorkerConfig(file);
			const consumers = config.queues.consumers ?? [];
			const consumer = consumers.find((c) => c.queue === queue);
			expect(consumer?.dead_letter_queue).toBe(`${queue}-dlq`);
			expect(String(consumer?.max_retries)).toBe(String(config.vars[setting]));
			for (const c of consumers) {
				for (const key of ["max_batch_size", "max_batch_timeout", "max_retries", "max_concurrency", "retry_delay"]) {
					expect(c, `${c.queue}.${key}`).toHaveProperty(key);
				}
			}
		},
	);
});

describe("caption-jobs-dlq outlasts a D1 outage", () => {
	// The last queue of a caption message: a dead letter D1 refused on every delivery is dropped,
	// and a notification that never made a job row leaves nothing a sweep could find.
	it("its retries, at the dead-letter delays, span more than two days and end within the queue's default retention of 4 days", () => {
		const consumers = readWorkerConfig(workerConfigFiles.consumer).queues.consumers ?? [];
		const dlq = consumers.find((c) => c.queue === "caption-jobs-dlq");
		expect(dlq?.dead_letter_queue).toBeUndefined();
		const delays = Array.from({ length: dlq?.max_retries ?? 0 }, (_, i) => deadLetterOutageDelay(i + 1));
		expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_DELAY_SECONDS);
		const span = delays.reduce((sum, d) => sum + d, 0);
		expect(span).toBeGreaterThan(2 * 24 * 3600);
		expect(span).toBeLessThan(4 * 24 * 3600);
	});
});

describe("model chain", () => {
	// GET /v1/models lists the status Worker's MODEL_CHAIN; the consumer runs its own. (Locally and
	// in the test pool the two are one var of one harness, which the config generator refuses to
	// merge if they differ.)
	it("the status Worker's MODEL_CHAIN is the consumer's, and it starts with a live captioning model", () => {
		const consumer = readWorkerConfig(workerConfigFiles.consumer).vars.MODEL_CHAIN;
		expect(consumer).toMatch(/^@cf\/moondream\/moondream3\.1-9B-A2B,/);
		expect(readWorkerConfig(workerConfigFiles.status).vars.MODEL_CHAIN).toBe(consumer);
	});

	it("the status and webhooks Workers bound batch ETAs with the consumer's chain and model rate limits", () => {
		const consumer = readWorkerConfig(workerConfigFiles.consumer).vars;
		expect(consumer.MODEL_RATE_LIMITS).toMatch(/=\d+/);
		for (const worker of [workerConfigFiles.status, workerConfigFiles.webhooks]) {
			const vars = readWorkerConfig(worker).vars;
			expect(vars.MODEL_RATE_LIMITS).toBe(consumer.MODEL_RATE_LIMITS);
			expect(vars.MODEL_CHAIN).toBe(consumer.MODEL_CHAIN);
		}
	});

	it("the consumer's MAX_JOBS_IN_FLIGHT (its batch listing's cap) is the status Worker's", () => {
		const consumer = readWorkerConfig(workerConfigFiles.consumer).vars.MAX_JOBS_IN_FLIGHT;
		expect(consumer).toMatch(/^\d+$/);
		expect(readWorkerConfig(workerConfigFiles.status).vars.MAX_JOBS_IN_FLIGHT).toBe(consumer);
	});

	it("the status Worker binds the consumer's model-health registry", () => {
		const consumer = readWorkerConfig(workerConfigFiles.consumer);
		const status = readWorkerConfig(workerConfigFiles.status);
		const [binding] = status.durable_objects.bindings.filter((b) => b.name === "MODEL_HEALTH");
		expect(binding).toMatchObject({ class_name: "ModelHealthRegistry", script_name: consumer.name });
		expect(consumer.durable_objects.bindings).toContainEqual({
			name: "MODEL_HEALTH",
			class_name: "ModelHealthRegistry",
		});
	});
});

describe("docs/configuration.md's bindings table", () => {
	const table = readFileSync(path.join(root, "docs/configuration.md"), "utf8");
	/** The table's row of a binding: its Workers column, or undefined without a row. */
	const workersOf = (binding: string) =>
		new RegExp(`^\\| \`${binding}\` \\|[^|]*\\|([^|]*)\\|`, "m").exec(table)?.[1] ?? undefined;

	it.each(Object.entries(workerConfigFiles))(
		"names every binding of the %s Worker, with that Worker",
		(worker, file) => {
			const config = readWorkerConfig(file);
			const bindings = [
				...config.r2_buckets.map((b) => b.binding),
				...config.d1_databases.map((d) => d.binding),
				...(config.queues.producers ?? []).map((p) => p.binding),
				...config.durable_objects.bindings.map((d) => d.name),
				...(config.images ? [config.images.binding] : []),
				...(config.ai ? [config.ai.binding] : []),
			];
			expect(bindings.length).toBeGreaterThanOrEqual(3);
			const missing = bindings.filter((binding) => !workersOf(binding)?.includes(worker));
			expect(missing).toEqual([]);
		},
	);
});

describe("npm run deploy's view of the configs", () => {
	// The deploy script reads each config as written, without wrangler: the Worker, secret, bucket
	// and queue names it finds there must be the ones wrangler resolves and deploys.
	it.each(productionConfigs)("%s: the names read as written are those wrangler resolves", (file) => {
		const resolved = DeployConfig.parse(readResolvedConfig(file));
		expect(resolved.r2_buckets.length + (resolved.queues.producers?.length ?? 0)).toBeGreaterThan(0);
		expect(readDeployConfig(file)).toEqual(resolved);
	});
});
