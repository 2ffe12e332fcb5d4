/**
 * The settings of the node project's tuned stack: a second leased `npm run dev`
 * (test/node/support/shared-stack-setup.ts lends it as it lends the shared one) for the files that
 * need small limits and a fast sweep rather than the defaults. Its users and why they may share
 * it (docs/testing.md):
 *
 * - test/node/batch-cap.test.ts: a key's batch at the in-flight cap, a slow emulator so that jobs
 *   stay in flight, a held page looking again after a second. The cap counts an API key's jobs
 *   only (the admin token has none), and the sweep deletes only finished jobs that a newer
 *   succeeded job of the same object supersedes and whose batch is gone: the batch's own jobs stay
 *   while it does, and the in-flight count never sees a deletion.
 * - test/node/retention-dev.test.ts: jobs kept 0 days and swept every 2 s. It works as the admin
 *   (no in-flight cap), makes no batch (the hold changes nothing it does) and waits for its
 *   captions with deadlines far above the emulator's 300 ms.
 *
 * A file that needs other settings, or that would be changed by these, starts its own stack.
 */
export const TUNED_STACK = {
	/** MAX_JOBS_IN_FLIGHT: an API key's queued or processing jobs. */
	maxJobsInFlight: 2,
	/** EMULATOR_LATENCY_MS: each model call takes this long. */
	emulatorLatencyMs: 300,
	/** BATCH_HOLD_SECONDS: a page held at the cap looks again after this (5 by default). */
	batchHoldSeconds: 1,
	/** RETENTION_JOBS_DAYS: superseded jobs are deleted at the first sweep after they ended. */
	retentionJobsDays: 0,
	/** `--sweep-every`: the local recovery and retention sweep, every this many seconds (60 by default). */
	sweepEverySeconds: 2,
} as const;

/** The `npm run dev` arguments that give a stack TUNED_STACK's settings. */
export const tunedStackArgs = (): string[] => [
	...["--var", `MAX_JOBS_IN_FLIGHT=${TUNED_STACK.maxJobsInFlight}`],
	...["--var", `EMULATOR_LATENCY_MS=${TUNED_STACK.emulatorLatencyMs}`],
	...["--var", `BATCH_HOLD_SECONDS=${TUNED_STACK.batchHoldSeconds}`],
	...["--var", `RETENTION_JOBS_DAYS=${TUNED_STACK.retentionJobsDays}`],
	...["--sweep-every", String(TUNED_STACK.sweepEverySeconds)],
];
