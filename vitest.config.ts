import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { writeTestConfig } from "./scripts/lib/configs.ts";

/**
 * The workerd files that need the storage of a fresh runtime, or change what other files' data
 * does: with the MODEL_CALLS files, they run first in each runtime, one after another, each from a
 * quiet start with fresh storage (test/support/quiet.ts: D1 dropped and migrated again, the
 * buckets emptied, after the work of the file before is over), which gives each what a runtime of
 * its own would; the first of the other files after them starts on fresh storage too.
 */
export const FRESH_START = [
	// Walks unfiltered listings (every failed job, every job of a time range) and compares them with
	// a count of the rows; 1,000 of the 2,000 subscriptions it writes have no prefix, and would get a
	// delivery of every other file's events. Its deliveries' 3,000 events are written dispatched, as
	// a delivery implies: the next file's quiet start waits for no fan-out of theirs.
	"test/status/list-bounded.test.ts",
	// Its 6,000 jobs completed a minute ago fill the percentile sample (the service's latest
	// PERCENTILE_SAMPLE_ROWS completions, scoped only after the sample is taken): other files' scoped
	// stats would find no percentiles of their own rows, and its own need none of theirs.
	"test/status/stats-bounded.test.ts",
	// Compares the unscoped counters with all the rows: rows deleted without the sweep (a test that
	// removes a job directly) would show as a mismatch here.
	"test/status/stat-counters.test.ts",
	// Re-seals every subscription's secret (and subscribes as the admin without a prefix): put back
	// with the suite's key in its `finally`, and the next file's storage is fresh in any case.
	"test/webhooks/secrets-key.test.ts",
	// The recovery sweeps after a restart re-send whatever is in flight: other files' batch
	// listings, jobs and deliveries would flood the queues the sweep's own work waits on; the outbox
	// sweep's budget test needs its events to be the oldest of the database. The two sweeper files
	// remove in their afterAll the events they leave undispatched on purpose (a fan-out sent to
	// HELD_MESSAGES, or never sent), which the next file's quiet start would wait for in vain.
	"test/consumer/sweeper.test.ts",
	"test/status/recovery.test.ts",
	"test/webhooks/sweeper.test.ts",
	// Count model calls while their jobs go through the real queues, and run the consumer's cron or
	// the webhooks Worker's sweep, which go through every row (the expired leases other files left
	// would be captioned inside a counted test).
	"test/batches/cancel.test.ts",
	"test/batches/listing.test.ts",
	// Counts every model call of the runtime; its duplicate copy may be sent back until the first
	// copy's lease ends (120 s), a message the next quiet start would have to wait for: it is the last
	// QUIET_START file of its runtime (LAST below), and the files after it do not wait for that.
	"test/e2e/queue.test.ts",
];

/**
 * The QUIET_START file that must be the last of them in its runtime: after it come only files that
 * start without waiting for a message sent back with a delay. vitest hands the files of a group to
 * its workers in the sequencer's order, so the last one handed out is the last of whichever runtime
 * takes it. One file at most: a second could land in the same runtime, after the first.
 */
const LAST = ["test/e2e/queue.test.ts"];

/**
 * The files that count every call the model emulator saw (or the registry's calls per model), inject
 * faults or overrides any caption would use, or read the health registry: the uploads of other
 * files are captioned in the background, whenever the queue gets to them, so these never run after
 * other files in their runtime. They run first, with the FRESH_START files, one after another, each
 * from a quiet start (test/quiet-setup.ts): it waits until the work the file before left is over
 * (no queue handler running, no message sent back with a delay still to come, nothing pending in
 * D1, no job row written for a moment), then gives the file fresh storage and resets the emulator,
 * the health registry and the lane scheduler.
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
 * order is that of the per-file durations of whole runs (`npx vitest run --reporter=verbose`, or
 * the JSON reporter's start and end of each file); the long files alone:
 * docs/performance.md#where-the-cpu-goes.
 */
const LONGEST = [
	"test/node/scheduling.test.ts",
	"test/node/restart.test.ts",
	"test/node/dashboard.test.ts",
	"test/node/cli.test.ts",
	// Not long, but a user of the shared stack, which stops soon after its last user is done: started
	// beside cli.test.ts, it finds the stack up rather than booting it again after it stopped.
	"test/node/events.test.ts",
	"test/node/deploy.test.ts",
	"test/node/capacity-bench.test.ts",
	// The tuned stack's two users (test/node/support/tuned-stack.ts), one after the other: the second
	// usually starts while the first holds the stack, or within the 15 s it outlives its last lease.
	"test/node/batch-cap.test.ts",
	"test/node/retention-dev.test.ts",
	"test/node/cli-offline.test.ts",
];

/** The workerd files that start quiet, on fresh storage (test/quiet-setup.ts): first in each runtime. */
const QUIET_START = [...MODEL_CALLS, ...FRESH_START];

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
			const name = path.relative(import.meta.dirname, file.moduleId);
			const at = LONGEST.indexOf(name);
			if (at !== -1) return at;
			// Then the QUIET_START files, those of LAST after the others, then the rest.
			const last = LAST.indexOf(name);
			if (last !== -1) return LONGEST.length + 1 + last;
			return QUIET_START.includes(name) ? LONGEST.length : LONGEST.length + 1 + LAST.length;
		};
		// A stable sort: the rest keeps vitest's order (slowest of the last run first).
		return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
	}
}

export default defineConfig(async () => {
	const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
	// Every Worker's production config, merged and with the test overrides (scripts/lib/configs.ts).
	const configPath = writeTestConfig();
	return {
		test: {
			globalSetup: ["./test/support/global-setup.ts"],
			// The Node tests' stacks log a JSON line per job; show them only for tests that fail (the
			// workerd files hold their Workers' lines themselves: test/support/held-logs.ts).
			silent: "passed-only" as const,
			testTimeout: 30_000,
			// Most of a test's time is spent waiting (workerd, queues, the dev stack), not computing.
			maxWorkers: 5,
			sequence: { sequencer: LongestFirst },
			projects: [
				{
					// Inside workerd, against local D1, R2, Queues and the Images binding.
					plugins: [
						cloudflareTest({
							remoteBindings: false,
							wrangler: { configPath },
							miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
						}),
					],
					test: {
						name: "workers",
						include: ["test/**/*.test.ts"],
						exclude: ["test/node/**"],
						// Starting workerd costs seconds: the files run one after another in three runtimes (one
						// per vitest worker) and share its storage. The QUIET_START files come first, each from a
						// quiet start on fresh storage; then the rest, which use keys, prefixes and ids of their own
						// and count only their own rows (docs/testing.md), the first of them on fresh storage.
						// Before, the two kinds ran in two groups of three runtimes each: alone, 97-119
						// CPU-seconds and 71-83 s in three runs, against 82-104 and 62-73 in four (2026-12-06).
						setupFiles: ["./test/setup.ts", "./test/quiet-setup.ts"],
						provide: { quietStartFiles: QUIET_START },
						isolate: false,
						// vitest takes a project's own maxWorkers only in a group of its own
						// (sequence.groupOrder), and runs the groups one after another: this one first, beside
						// npm test's checks (its files wait much of the time: pacing, cool-downs, quiet starts),
						// then the Node files.
						maxWorkers: 3,
						sequence: { groupOrder: 0 },
						// Every runtime loads the dependencies module by module over its socket to vite;
						// pre-bundled, each is one module (a quarter less CPU for the workerd files). Every entry
						// the Workers or the tests import is listed, so a class such as hono's HTTPException has
						// one copy, whichever entry it is reached through.
						deps: { optimizer: { ssr: { enabled: true, include: BUNDLED_DEPENDENCIES } } },
						testTimeout: 30_000,
						// vitest's console capture sends each line over an RPC; a line a queue consumer logs
						// while a file makes its last round trip is parked for ever, and so is vitest (after the
						// last file, with every test passed). test/support/held-logs.ts holds the lines instead.
						disableConsoleIntercept: true,
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
