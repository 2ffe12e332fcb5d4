/**
 * One source for configuration: each Worker's wrangler.jsonc is its production config, and the
 * configs that `npm run dev`, `npm run dev -- --remote-ai` and the test pool run are generated
 * from it (scripts/lib/configs.ts). These checks compare what wrangler resolves from the generated
 * files with what it resolves from the production ones and allow only the differences listed
 * here: a new override, or a binding lost on the way, fails until it is listed (and documented in
 * docs/configuration.md).
 */
import { readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
	productionConfigs,
	readConfig,
	testConfigPath,
	workerConfigFiles,
	workerNames,
	writeLocalConfigs,
	writeTestConfig,
} from "../../scripts/lib/configs.ts";
import { readResolvedConfig } from "../../scripts/lib/worker-config.ts";
import { root } from "../../scripts/lib/wrangler.ts";

/** Where a value sits: `vars.DEPLOY_MODE`, `queues.consumers[caption-jobs].max_retries`, … */
type Leaves = Record<string, unknown>;

function leaves(value: unknown, at: string, out: Leaves = {}): Leaves {
	if (Array.isArray(value)) {
		value.forEach((item, i) => {
			const record = item !== null && typeof item === "object" ? (item as Record<string, unknown>) : {};
			const id = record.binding ?? record.name ?? record.queue ?? record.tag ?? i;
			leaves(item, `${at}[${String(id)}]`, out);
		});
	} else if (value !== null && typeof value === "object") {
		for (const [key, v] of Object.entries(value)) leaves(v, at ? `${at}.${key}` : key, out);
	} else if (value !== undefined) {
		out[at] = value;
	}
	return out;
}

/** A config as wrangler resolves it, flattened, with paths made comparable across folders. */
function resolved(file: string): Leaves {
	const config = readResolvedConfig(file);
	const out = leaves({ ...config, configPath: undefined, userConfigPath: undefined }, "");
	for (const key of Object.keys(out).filter((k) => k.endsWith(".migrations_dir") || k === "assets.directory")) {
		out[key] = path.relative(root, path.resolve(path.dirname(path.resolve(root, file)), String(out[key])));
	}
	return out;
}

/** `key: production → generated` for every value that differs ("–" where there is none). */
function differences(production: Leaves, generated: Leaves): string[] {
	const show = (v: unknown) => (v === undefined ? "–" : JSON.stringify(v));
	return [...new Set([...Object.keys(production), ...Object.keys(generated)])]
		.filter((key) => production[key] !== generated[key])
		.map((key) => `${key}: ${show(production[key])} → ${show(generated[key])}`)
		.sort();
}

const emulatorVars = [
	'vars.EMULATOR_GONE_MODELS: – → ""',
	'vars.EMULATOR_LATENCY_MS: – → "0"',
	'vars.EMULATOR_RATE_LIMITS: – → "Image-to-Text=720, Text Generation=300"',
	'vars.EMULATOR_RETIRED_ERROR: – → "5028: This model was deprecated"',
	'vars.EMULATOR_RETIRED_MODELS: – → "@cf/unum/uform-gen2-qwen-500m,@cf/google/gemma-3-12b-it"',
	'vars.EMULATOR_TIME_SCALE: – → "1"',
	'vars.EMULATOR_FAULT_RATE: – → "0"',
];

/** Crons do not fire under `wrangler dev`: npm run dev runs their sweeps through these (status only, local only). */
const recoveryServices = [
	'services[CONSUMER_RECOVERY].binding: – → "CONSUMER_RECOVERY"',
	'services[CONSUMER_RECOVERY].entrypoint: – → "ConsumerRecovery"',
	'services[CONSUMER_RECOVERY].service: – → "r2-captions-consumer"',
	'services[WEBHOOKS_RECOVERY].binding: – → "WEBHOOKS_RECOVERY"',
	'services[WEBHOOKS_RECOVERY].entrypoint: – → "WebhooksRecovery"',
	'services[WEBHOOKS_RECOVERY].service: – → "r2-captions-webhooks"',
];

/** Every difference a local config may have from its production config. */
const localOverrides: Record<string, string[]> = {
	status: ['vars.DEPLOY_MODE: "production" → "local"', ...recoveryServices],
	consumer: [
		'ai.binding: "AI" → –',
		...emulatorVars,
		'vars.DEPLOY_MODE: "production" → "local"',
		'vars.MODEL_BACKEND: "workers-ai" → "emulator"',
	],
	webhooks: ['vars.DEPLOY_MODE: "production" → "local"'],
};

/** … and with `--remote-ai`. */
const remoteAiOverrides: Record<string, string[]> = {
	status: ['vars.DEPLOY_MODE: "production" → "local"', ...recoveryServices],
	consumer: ["ai.remote: – → true", 'vars.DEPLOY_MODE: "production" → "local"'],
	webhooks: ['vars.DEPLOY_MODE: "production" → "local"'],
};

describe("production configs (what `npm run deploy` and a plain `wrangler deploy` ship)", () => {
	it.each(productionConfigs)("%s has no environments: a plain deploy is the production deploy", (file) => {
		expect(readConfig(file).env).toBeUndefined();
		expect(readResolvedConfig(file).definedEnvironments).toEqual([]);
	});

	it.each(productionConfigs)("%s turns on Workers Logs and carries no local or emulator setting", (file) => {
		const config = readResolvedConfig(file);
		const vars = leaves(config.vars, "vars");
		expect(config.observability).toMatchObject({ enabled: true });
		expect(Object.keys(vars).filter((k) => k.startsWith("vars.EMULATOR_"))).toEqual([]);
		if ("vars.DEPLOY_MODE" in vars) expect(vars["vars.DEPLOY_MODE"]).toBe("production");
		expect(config.ai === undefined || !("remote" in (config.ai as object))).toBe(true);
	});

	it("the consumer runs the real Workers AI", () => {
		const config = readResolvedConfig(workerConfigFiles.consumer);
		expect(config.ai).toEqual({ binding: "AI" });
		expect(leaves(config.vars, "vars")["vars.MODEL_BACKEND"]).toBe("workers-ai");
	});
});

describe("generated configs differ from production only by the listed overrides", () => {
	const local = writeLocalConfigs();
	const remoteAi = writeLocalConfigs({ remoteAi: true });

	it.each(workerNames.map((name, i) => [name, i] as const))("%s, npm run dev", (name, i) => {
		const generated = local[i] ?? "";
		expect(differences(resolved(workerConfigFiles[name]), resolved(generated))).toEqual(
			[...(localOverrides[name] ?? [])].sort(),
		);
	});

	it.each(workerNames.map((name, i) => [name, i] as const))("%s, npm run dev -- --remote-ai", (name, i) => {
		const generated = remoteAi[i] ?? "";
		expect(differences(resolved(workerConfigFiles[name]), resolved(generated))).toEqual(
			[...(remoteAiOverrides[name] ?? [])].sort(),
		);
	});

	it("npm run dev -- --no-watch: the same configs in a folder of their own, with a build that does nothing and watches an empty folder", () => {
		const noWatch = writeLocalConfigs({ noWatch: true });
		expect(noWatch.map((file) => path.basename(path.dirname(file)))).toEqual(Array(3).fill("local-no-watch"));
		noWatch.forEach((file, i) => {
			const folder = path.dirname(path.resolve(root, file));
			expect(differences(resolved(local[i] ?? ""), resolved(file))).toEqual([
				'build.command: – → "exit 0"',
				'build.watch_dir: "./src" → –',
				`build.watch_dir[0]: – → ${JSON.stringify(path.relative(root, path.join(folder, "nothing-to-watch")))}`,
			]);
			expect(readdirSync(path.join(folder, "nothing-to-watch"))).toEqual([]);
		});
		// The default stays as a developer needs it: esbuild's watch bundles again after a change.
		expect(local.map((file) => readResolvedConfig(file).build)).toEqual(Array(3).fill({ watch_dir: "./src" }));
	});

	it("no local config needs a Cloudflare login (no AI binding) unless --remote-ai asks for it", () => {
		expect(local.map((file) => readResolvedConfig(file).ai)).toEqual([undefined, undefined, undefined]);
		expect(remoteAi.map((file) => readResolvedConfig(file).ai)).toEqual([
			undefined,
			{ binding: "AI", remote: true },
			undefined,
		]);
	});

	it("--var sets a local var of whichever Worker has it, and refuses one no Worker has", () => {
		const [status, consumer, webhooks] = writeLocalConfigs({
			vars: { EMULATOR_GONE_MODELS: "@cf/unum/uform-gen2-qwen-500m", DEPLOY_MODE: "production" },
		}).map(readResolvedConfig);
		expect(consumer?.vars).toMatchObject({ EMULATOR_GONE_MODELS: "@cf/unum/uform-gen2-qwen-500m" });
		expect([status?.vars, consumer?.vars, webhooks?.vars]).toMatchObject([
			{ DEPLOY_MODE: "production" },
			{ DEPLOY_MODE: "production" },
			{ DEPLOY_MODE: "production" },
		]);
		expect(() => writeLocalConfigs({ vars: { EMULATOR_GONE_MODEL: "x" } })).toThrow(
			/no Worker has the var EMULATOR_GONE_MODEL/,
		);
	});

	it("--var CAPTION_MAX_RETRIES or WEBHOOK_MAX_RETRIES sets its queues' max_retries too", () => {
		const retries = (config: Record<string, unknown> | undefined) =>
			Object.fromEntries(
				z
					.object({
						queues: z.object({ consumers: z.array(z.object({ queue: z.string(), max_retries: z.number() })) }),
					})
					.parse(config)
					.queues.consumers.map((c) => [c.queue, c.max_retries]),
			);
		const [, plainConsumer, plainWebhooks] = writeLocalConfigs().map(readResolvedConfig);
		const [, consumer, webhooks] = writeLocalConfigs({
			vars: { CAPTION_MAX_RETRIES: "8", WEBHOOK_MAX_RETRIES: "4" },
		}).map(readResolvedConfig);
		expect(retries(consumer)).toEqual({
			...retries(plainConsumer),
			"caption-jobs": 8,
			"caption-batch-jobs": 8,
		});
		expect(retries(webhooks)).toEqual({ ...retries(plainWebhooks), "webhook-deliveries": 4 });
		expect(consumer?.vars).toMatchObject({ CAPTION_MAX_RETRIES: "8" });
		// Unchanged without them: the production values.
		expect(retries(plainConsumer)["caption-jobs"]).toBe(5);
	});
});

describe("the test pool's config (every Worker in test/harness.ts)", () => {
	writeTestConfig();
	const harness = resolved(testConfigPath);

	/** What the pool runs differently from production, besides the local overrides. */
	const testOverrides: Leaves = {
		name: "r2-captions-test",
		topLevelName: "r2-captions-test",
		main: path.join(root, "test/harness.ts"),
		"vars.ADMIN_TOKEN": "test-admin-token",
		"vars.WEBHOOK_SECRET": "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItY2FsbGJhY2tz",
		"vars.WEBHOOK_SECRETS_KEY": "test-webhook-secrets-sealing-key",
		"vars.CAPTION_MAX_RETRIES": "2",
		"vars.RETRY_BASE_SECONDS": "0",
		"vars.RETRY_MAX_SECONDS": "0",
		"vars.MODEL_RATE_LIMITS": "off",
		// The status Worker's binding to the consumer's registry is the harness's own class.
		"durable_objects.bindings[MODEL_HEALTH].script_name": undefined,
		// … and so is its binding to the consumer's event hub.
		"durable_objects.bindings[EVENT_HUB].script_name": undefined,
		// … and to the consumer's lane scheduler.
		"durable_objects.bindings[MODEL_SCHEDULER].script_name": undefined,
		// … and so are the recovery entrypoints (test/harness.ts exports them).
		"services[CONSUMER_RECOVERY].service": "r2-captions-test",
		"services[WEBHOOKS_RECOVERY].service": "r2-captions-test",
		"vars.WEBHOOK_TIMEOUT_MS": "2000",
		"vars.WEBHOOK_MAX_RETRIES": "3",
		"vars.WEBHOOK_RETRY_BASE_SECONDS": "0",
		"vars.WEBHOOK_RETRY_MAX_SECONDS": "0",
		"vars.BATCH_PAGE_SIZE": "3",
		"vars.RATE_LIMIT_PER_MINUTE": "1000000",
		"vars.RATE_LIMIT_BURST": "100000",
		"vars.MAX_JOBS_IN_FLIGHT": "100000",
		"vars.MAX_OPEN_BATCHES_PER_KEY": "100000",
		"vars.AUTH_FAILURE_LIMIT_PER_MINUTE": "1000000",
		"vars.AUTH_FAILURE_BURST": "100000",
		"vars.EVENTS_KEEPALIVE_SECONDS": "1",
		"queues.producers[HELD_MESSAGES].binding": "HELD_MESSAGES",
		"queues.producers[HELD_MESSAGES].queue": "held-messages",
	};
	for (const [queue, retries] of Object.entries({
		"caption-jobs": 2,
		"caption-batch-jobs": 2,
		"caption-jobs-dlq": 2,
		"webhook-deliveries": 3,
		"webhook-deliveries-dlq": 2,
		"batch-listing": 3,
	})) {
		Object.assign(testOverrides, {
			[`queues.consumers[${queue}].max_batch_timeout`]: 0,
			[`queues.consumers[${queue}].max_concurrency`]: 1,
			[`queues.consumers[${queue}].retry_delay`]: 0,
			[`queues.consumers[${queue}].max_retries`]: retries,
		});
	}
	/** Deploy-only settings the pool leaves out (crons do not fire there, tests call `scheduled`; its fetch serves no assets). */
	const omitted = /^(secrets|triggers|observability|ai|assets)\./;

	it("has every var and binding of every Worker's local config, changed only by the test overrides", () => {
		const expected: Leaves = {};
		for (const file of writeLocalConfigs()) {
			for (const [key, value] of Object.entries(resolved(file))) if (!omitted.test(key)) expected[key] = value;
		}
		Object.assign(expected, testOverrides);
		expect(differences(expected, harness)).toEqual([]);
	});
});
