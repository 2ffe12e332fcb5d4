import { beforeAll } from "vitest";
import { QUIET_TIMEOUT_MS, quietStart } from "./support/quiet";

// The MODEL_CALLS files run one after another in two runtimes (vitest.config.ts): each waits until
// the work of the file before is over, then starts from a fresh emulator, registry and pacing.
// After test/setup.ts's own reset, which does not wait.
beforeAll(quietStart, QUIET_TIMEOUT_MS + 10_000);
