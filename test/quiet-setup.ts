import { beforeAll, expect, inject } from "vitest";
import { QUIET_TIMEOUT_MS, quietStart } from "./support/quiet";

// The workerd files run one after another in three runtimes, the QUIET_START files of
// vitest.config.ts (MODEL_CALLS and FRESH_START) first. Each of those waits until the work of the
// file before is over, then starts from fresh storage, emulator, registry and pacing. The first
// other file after them does the same without waiting for a message sent back with a delay (the
// last of them, test/e2e/queue.test.ts, leaves one for up to 120 s; if it comes back while the
// tables are dropped, the consumer's write fails and the message is retried): the files after it
// count only their own rows and share the runtime's storage, but not with those files' data.
// After test/setup.ts's own reset, which does not wait.

/** Whether the file before, in this runtime, was a QUIET_START file (this module is evaluated again for each file). */
const AFTER_QUIET_FILE = Symbol.for("r2-captions.after-quiet-start-file");
const runtime = globalThis as { [AFTER_QUIET_FILE]?: boolean };

beforeAll(async () => {
	const file = expect.getState().testPath;
	if (file === undefined) throw new Error("test/quiet-setup.ts: vitest gave no path for this file");
	if (inject("quietStartFiles").some((name) => file.endsWith(`/${name}`))) {
		// Set first: if this start fails, the next file still starts on fresh storage.
		runtime[AFTER_QUIET_FILE] = true;
		await quietStart();
	} else if (runtime[AFTER_QUIET_FILE]) {
		await quietStart({ waitForDelayed: false });
		runtime[AFTER_QUIET_FILE] = false;
	}
}, QUIET_TIMEOUT_MS + 10_000);
