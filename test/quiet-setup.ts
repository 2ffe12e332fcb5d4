import { beforeAll } from "vitest";
import { QUIET_TIMEOUT_MS, quietStart } from "./support/quiet";

// The files of the workers-serial project (MODEL_CALLS and FRESH_START in vitest.config.ts) run one
// after another in three runtimes: each waits until the work of the file before is over, then starts
// from fresh storage, emulator, registry and pacing. After test/setup.ts's own reset, which does
// not wait.
beforeAll(quietStart, QUIET_TIMEOUT_MS + 10_000);
