/**
 * A Worker's wrangler config as wrangler itself resolves it (defaults filled in), validated
 * with zod down to the parts the scripts and config tests read. wrangler's published types leave
 * `unstable_readConfig`'s result untyped (they point at a package it bundles), hence the schema.
 */
import path from "node:path";
import { z } from "zod";
import { readConfig } from "./configs.ts";
import { root, wranglerApi } from "./wrangler.ts";

const QueueConsumer = z.object({
	queue: z.string(),
	max_batch_size: z.number().optional(),
	max_batch_timeout: z.number().optional(),
	max_retries: z.number().optional(),
	max_concurrency: z.number().nullable().optional(),
	retry_delay: z.number().optional(),
	dead_letter_queue: z.string().optional(),
});

export const WorkerConfig = z.object({
	name: z.string(),
	main: z.string().optional(),
	compatibility_date: z.string().optional(),
	vars: z.record(z.string(), z.unknown()),
	secrets: z.object({ required: z.array(z.string()).optional() }).optional(),
	ai: z.object({ binding: z.string(), remote: z.boolean().optional() }).optional(),
	images: z.object({ binding: z.string() }).optional(),
	assets: z.object({ directory: z.string() }).optional(),
	r2_buckets: z.array(z.object({ binding: z.string(), bucket_name: z.string().optional() })),
	d1_databases: z.array(
		z.object({
			binding: z.string(),
			database_name: z.string().optional(),
			database_id: z.string().optional(),
			migrations_dir: z.string().optional(),
		}),
	),
	queues: z.object({
		producers: z.array(z.object({ binding: z.string(), queue: z.string() })).optional(),
		consumers: z.array(QueueConsumer).optional(),
	}),
	durable_objects: z.object({
		bindings: z.array(z.object({ name: z.string(), class_name: z.string(), script_name: z.string().optional() })),
	}),
	triggers: z.object({ crons: z.array(z.string()).optional() }).optional(),
});
export type WorkerConfig = z.infer<typeof WorkerConfig>;

/** Everything wrangler resolved, unvalidated: for comparisons over every kind of binding. */
export function readResolvedConfig(file: string): Record<string, unknown> {
	const { unstable_readConfig } = wranglerApi();
	return z.record(z.string(), z.unknown()).parse(unstable_readConfig({ config: path.resolve(root, file) }));
}

/** `file` is relative to the repository root (or absolute). */
export function readWorkerConfig(file: string): WorkerConfig {
	return WorkerConfig.parse(readResolvedConfig(file));
}

/**
 * The parts of a config `npm run deploy` reads (names of the Worker, its secrets, buckets and
 * queues), with the defaults wrangler fills in for an absent list.
 */
export const DeployConfig = WorkerConfig.pick({ name: true, secrets: true }).extend({
	r2_buckets: WorkerConfig.shape.r2_buckets.default([]),
	queues: WorkerConfig.shape.queues.default({}),
});
export type DeployConfig = z.infer<typeof DeployConfig>;

/**
 * What `npm run deploy` reads of a config, read as written (JSONC) without starting wrangler, whose
 * bundle costs more CPU to load than the rest of the script. These names are literal in the
 * committed configs, which have no environments; test/node/config.test.ts checks that wrangler
 * resolves each of them to the same values.
 */
export function readDeployConfig(file: string): DeployConfig {
	return DeployConfig.parse(readConfig(file));
}

/** Every queue a config produces to or consumes from, dead-letter queues included. */
export function queueNames(config: Pick<WorkerConfig, "queues">): string[] {
	const names = [
		...(config.queues.producers ?? []).map((p) => p.queue),
		...(config.queues.consumers ?? []).flatMap((c) => [c.queue, ...(c.dead_letter_queue ? [c.dead_letter_queue] : [])]),
	];
	return [...new Set(names)];
}
