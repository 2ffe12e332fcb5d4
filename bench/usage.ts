/**
 * The usage scenario of `npm run bench -- --only usage`: the estimate of a dry run against the
 * usage its jobs report, on the emulator. N objects put straight into the bucket, one prefix batch
 * over them with `dry_run`, started once planned, run to `completed`; then the plan's estimate
 * (model calls, dollars at 750 + 100 tokens a call) beside the finished batch's jobs, calls and
 * usage (priced with the same table, shared/models/prices.ts). The emulator's token counts are
 * plausible, not the real tokenizers' (docs/models.md#the-emulator): this checks that the two
 * figures are computed and compared end to end, and how far the assumed tokens per call are from
 * the counts the models report.
 */
import path from "node:path";
import { type Batch, ok } from "../client/index.ts";
import { MODEL_PRICES } from "../shared/models/prices.ts";
import { type Bundles, seedObjects } from "./batches.ts";
import { api } from "./pipeline.ts";
import { migratedState, startStack } from "./stack.ts";
import { header, round, row } from "./stats.ts";

export interface UsageResult {
	n: number;
	model: string;
	estimate: { modelCalls: number; usd: number | null; inputTokensPerCall: number; outputTokensPerCall: number };
	actual: {
		/** Jobs that ended, succeeded or failed (a fallback or repair would make more calls than jobs). */
		jobs: number;
		/** Jobs whose calls reported tokens (the batch's `usage.jobs_with_usage`). */
		jobsWithUsage: number;
		inputTokens: number;
		outputTokens: number;
		inputTokensPerJob: number;
		outputTokensPerJob: number;
		/** The usage priced with the model's published price (null without one). */
		usd: number | null;
		models: Record<string, number>;
	};
	/** usd from usage / estimated usd. */
	usdRatio: number | null;
}

const ESTIMATED_TOKENS = { input: 750, output: 100 };
const VARS = { EMULATOR_LATENCY_MS: "0", MODEL_RATE_LIMITS: "off", EMULATOR_RATE_LIMITS: "off" };

export async function runUsage(options: {
	bundles: Bundles;
	workDir: string;
	n: number;
	log: (line: string) => void;
}): Promise<UsageResult> {
	const persistTo = await migratedState(path.join(options.workDir, "state"));
	const prefix = "usage/";
	options.log(`  seeding ${options.n} objects straight into the bucket`);
	await seedObjects(persistTo, prefix, options.n);
	const stack = await startStack({
		consumer: "real",
		bundles: options.bundles,
		persistTo,
		workDir: options.workDir,
		vars: VARS,
	});
	try {
		const client = api(stack);
		const created = await ok(client.POST("/v1/batches", { body: { prefix, dry_run: true, skip_captioned: true } }));
		const id = created.id;
		const get = () => ok(client.GET("/v1/batches/{id}", { params: { path: { id } } }));
		const until = async (done: (b: Batch) => boolean) => {
			const deadline = Date.now() + 20 * 60_000;
			for (let batch = await get(); Date.now() < deadline; batch = await get()) {
				if (done(batch)) return batch;
				await new Promise((r) => setTimeout(r, 500));
			}
			throw new Error(`batch ${id} did not get there in 20 minutes`);
		};
		const planned = await until((b) => b.status === "planned");
		const estimate = planned.estimate;
		if (!estimate) throw new Error("a planned batch without an estimate");
		options.log(`  planned: ${estimate.model_calls} calls on ${estimate.model}, $${estimate.usd}`);
		await ok(client.POST("/v1/batches/{id}/start", { params: { path: { id } } }));
		const done = await until((b) => b.completed_at !== null);
		const { usage, counts } = done;
		const price = MODEL_PRICES.get(estimate.model) ?? null;
		const usd =
			price === null
				? null
				: round((usage.input_tokens * price.inputPerMillion + usage.output_tokens * price.outputPerMillion) / 1e6, 6);
		const perJob = (tokens: number) => (usage.jobs_with_usage === 0 ? 0 : round(tokens / usage.jobs_with_usage, 1));
		return {
			n: options.n,
			model: estimate.model,
			estimate: {
				modelCalls: estimate.model_calls,
				usd: estimate.usd,
				inputTokensPerCall: ESTIMATED_TOKENS.input,
				outputTokensPerCall: ESTIMATED_TOKENS.output,
			},
			actual: {
				jobs: counts.succeeded + counts.failed,
				jobsWithUsage: usage.jobs_with_usage,
				inputTokens: usage.input_tokens,
				outputTokens: usage.output_tokens,
				inputTokensPerJob: perJob(usage.input_tokens),
				outputTokensPerJob: perJob(usage.output_tokens),
				usd,
				models: done.models,
			},
			usdRatio: usd === null || !estimate.usd ? null : round(usd / estimate.usd, 3),
		};
	} finally {
		await stack.stop();
	}
}

export function usageMarkdown(result: UsageResult | null): string[] {
	if (!result) return [];
	const { estimate: e, actual: a } = result;
	return [
		`#### Usage: a dry run's estimate against the emulated usage (N = ${result.n}, ${result.model})`,
		"",
		...header(["", "model calls / jobs", "input tokens per call", "output tokens per call", "USD"]),
		row(["estimate", e.modelCalls, e.inputTokensPerCall, e.outputTokensPerCall, e.usd ?? "n/a"]),
		row([
			`usage (${a.jobsWithUsage} jobs reported)`,
			a.jobs,
			a.inputTokensPerJob,
			a.outputTokensPerJob,
			a.usd ?? "n/a",
		]),
		"",
		`Usage priced / estimate: ${result.usdRatio ?? "n/a"}. Models: ${JSON.stringify(a.models)}.`,
		"",
	];
}
