import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { writeTestConfig } from "./scripts/lib/configs.ts";

/**
 * The workerd files that need a runtime (and so a D1, R2 bucket and queues) of their own: they read
 * service-wide figures (GET /v1/stats) or bound the rows a read examines, which other files' rows
 * would change; or they change what other files' data does; or they count the model calls of the
 * whole runtime while their jobs go through the real queues (work another file would find running).
 */
export const OWN_RUNTIME = [
	// Walks unfiltered listings (every failed job, every job of a time range) and compares them with
	// a count of the rows: another file's job finishing in the background would change both.
	"test/status/list-bounded.test.ts",
	// Its 6,000 jobs completed a minute ago fill the percentile sample (the service's latest
	// PERCENTILE_SAMPLE_ROWS completions, scoped only after the sample is taken): another file's
	// scoped stats (stats.test.ts, stats-series.test.ts) would find no percentiles of their own rows.
	"test/status/stats-bounded.test.ts",
	// Compares the unscoped counters with all the rows: another file's rows deleted without the
	// sweep (a test that removes a job directly) would show as a mismatch here.
	"test/status/stat-counters.test.ts",
	// Re-seals every subscription's secret (and subscribes as the admin without a prefix): other
	// files' deliveries would change.
	"test/webhooks/secrets-key.test.ts",
	// The recovery sweeps after a restart re-send whatever every file left in flight: other files'
	// batch listings, jobs and deliveries would flood the queues the sweep's own work waits on.
	"test/consumer/sweeper.test.ts",
	"test/status/recovery.test.ts",
	"test/webhooks/sweeper.test.ts",
	// Count every model call of the runtime (emulator.callsTo()) while their jobs go through the real
	// queues; queue.test.ts injects model faults any file's caption would use up, and the batch files
	// run the consumer's cron or the webhooks Worker's sweep, which go through every file's rows. Not
	// after the MODEL_CALLS files either: queue.test.ts's duplicate copy may be sent back for a lease
	// (120 s), a delayed message the quiet start does not see, and the cron would re-queue the
	// captions those files leave leased (caption-job.test.ts's lost lease, 60 s).
	"test/e2e/queue.test.ts",
	"test/batches/cancel.test.ts",
	"test/batches/listing.test.ts",
];

/**
 * The files that count every call the model emulator saw (or the registry's calls per model), inject
 * faults or overrides any caption would use, or read the health registry: the uploads of other
 * files are captioned in the background, whenever the queue gets to them, so these never share a
 * runtime with the `workers` project. They run one after another in two runtimes of their own
 * (project `workers-model-calls`), each from a quiet start (test/quiet-setup.ts): it waits until
 * the work the file before left is over (no queue handler running, nothing pending in D1, no job
 * row written for a moment), then resets the emulator, the health registry and the lane scheduler.
 * None of them leaves a message on a queue with a delay, which the wait could not see.
 */
export const MODEL_CALLS = [
	"test/consumer/batch-grants.test.ts",
	"test/consumer/caption-job.test.ts",
	"test/consumer/dead-letter.test.ts",
	"test/consumer/images-errors.test.ts",
	"test/consumer/model-health.test.ts",
	"test/consumer/models.test.ts",
	"test/consumer/object-options.test.ts",
	"test/consumer/rate-limiter.test.ts",
	"test/status/models.test.ts",
];

/**
 * The files that take longest (each boots local stacks, a browser, or runs wrangler again and
 * again), longest first: they start first, so that none of them is left running alone at the end.
 * vitest would order them by the durations of the last run, which a fresh clone has not got. The
 * order is that of the per-file durations of a whole run (`npx vitest run --reporter=verbose`;
 * docs/performance.md#the-test-loop-npm-test).
 */
const LONGEST = [
	"test/node/scheduling.test.ts",
	"test/node/restart.test.ts",
	"test/node/dashboard.test.ts",
	"test/node/cli.test.ts",
	// Not long, but a user of the shared stack, which stops soon after its last user is done: started
	// beside cli.test.ts, it finds the stack up rather than booting it again after it stopped.
	"test/node/events.test.ts",
	"test/node/smoke.test.ts",
	"test/node/deploy.test.ts",
	"test/node/capacity-bench.test.ts",
	// The tuned stack's two users (test/node/support/tuned-stack.ts), one after the other: the second
	// usually starts while the first holds the stack, or within the 15 s it outlives its last lease.
	"test/node/batch-cap.test.ts",
	"test/node/retention-dev.test.ts",
	"test/node/cli-offline.test.ts",
];

/** The packages the Workers and the workerd tests import (a test guards the list: test/node/bundled-deps.test.ts). */
export const BUNDLED_DEPENDENCIES = [
	"zod",
	"hono",
	"hono/http-exception",
	"hono/body-limit",
	"@hono/zod-openapi",
	"@cfworker/json-schema",
	"csv-stringify/sync",
	"csv-parse/sync",
	"standardwebhooks",
	"eventsource-parser/stream",
];

class LongestFirst extends BaseSequencer {
	override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
		const rank = (file: TestSpecification) => {
			const at = LONGEST.indexOf(path.relative(import.meta.dirname, file.moduleId));
			return at === -1 ? LONGEST.length : at;
		};
		// A stable sort: the rest keeps vitest's order (slowest of the last run first).
		return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
	}
}

export default defineConfig(async () => {
	const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
	// Every Worker's production config, merged and with the test overrides (scripts/lib/configs.ts).
	const configPath = writeTestConfig();
	// Inside workerd, against local D1, R2, Queues and the Images binding.
	const workerd = (name: string) => ({
		plugins: [
			cloudflareTest({
				remoteBindings: false,
				wrangler: { configPath },
				miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
			}),
		],
		test: {
			name,
			setupFiles: ["./test/setup.ts"],
			// Every runtime (one per file of the own-runtime project) loads the dependencies module by
			// module over its socket to vite; pre-bundled, each is one module (a quarter less CPU for
			// the workerd projects). Every entry the Workers or the tests import is listed, so a class
			// such as hono's HTTPException has one copy, whichever entry it is reached through.
			deps: { optimizer: { ssr: { enabled: true, include: BUNDLED_DEPENDENCIES } } },
			testTimeout: 30_000,
			// vitest's console capture sends each line over an RPC; a line a queue consumer logs while
			// a file makes its last round trip is parked for ever, and so is vitest (after the last
			// file, with every test passed). test/support/held-logs.ts holds the lines instead.
			disableConsoleIntercept: true,
		},
	});
	const shared = workerd("workers");
	const own = workerd("workers-own-runtime");
	const modelCalls = workerd("workers-model-calls");
	return {
		test: {
			globalSetup: ["./test/support/global-setup.ts"],
			// The Node tests' stacks log a JSON line per job; show them only for tests that fail (the
			// workerd projects hold their Workers' lines themselves: test/support/held-logs.ts).
			silent: "passed-only" as const,
			testTimeout: 30_000,
			// Most of a test's time is spent waiting (workerd, queues, the dev stack), not computing.
			maxWorkers: 5,
			sequence: { sequencer: LongestFirst },
			projects: [
				{
					...shared,
					test: {
						...shared.test,
						include: ["test/**/*.test.ts"],
						exclude: ["test/node/**", ...OWN_RUNTIME, ...MODEL_CALLS],
						// After workers-model-calls (below), with the other projects.
						sequence: { groupOrder: 1 },
						// Starting workerd costs seconds: these files run one after another in a few
						// runtimes (one per vitest worker) and share its storage, so each test uses keys,
						// prefixes and ids of their own and counts only its own rows (docs/testing.md).
						isolate: false,
					},
				},
				{ ...own, test: { ...own.test, include: OWN_RUNTIME, sequence: { groupOrder: 1 } } },
				{
					...modelCalls,
					test: {
						...modelCalls.test,
						include: MODEL_CALLS,
						setupFiles: [...modelCalls.test.setupFiles, "./test/quiet-setup.ts"],
						// Two runtimes (two vitest workers, each running its files one after another) instead
						// of one per file: about 3.5 CPU-seconds a runtime. vitest takes a project's own
						// maxWorkers only in a group of its own (sequence.groupOrder), and runs the groups one
						// after another: this one first, beside npm test's checks, then the rest. One runtime
						// would save another 3.5 CPU-seconds but take about 50 s on half a core (2026-12-06).
						isolate: false,
						maxWorkers: 2,
						sequence: { groupOrder: 0 },
					},
				},
				{
					// In Node: what has to run outside workerd (OpenAPI validation, wrangler, the dev server).
					test: {
						name: "node",
						include: ["test/node/**/*.test.ts"],
						environment: "node",
						sequence: { groupOrder: 1 },
						// Files run one after another in a few Node processes (one per vitest worker) instead of a
						// process each: about half a CPU-second a file. They keep no state in shared modules.
						isolate: false,
						// One `npm run dev` for the files that need a plain stack, one for the two that need the tuned
						// settings (batch-cap and retention-dev), and one dry run of each Worker (dry-run.test.ts and
						// capacity-bench.test.ts), each started when the first file asks.
						globalSetup: ["./test/node/support/shared-stack-setup.ts", "./test/node/support/dry-runs-setup.ts"],
						testTimeout: 120_000,
						// A set-up hook that imports the whole status app, or boots a browser, takes more than
						// vitest's default 10 s on a loaded machine (openapi.test.ts's did beside a benchmark).
						hookTimeout: 60_000,
					},
				},
			],
		},
	};
});
