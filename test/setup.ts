import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll } from "vitest";
import { holdLogsUntilFailure } from "./support/held-logs";
import { resetModels } from "./support/models";

await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);

// Files share a runtime (and its module state) one after another: each starts with the model
// emulator and the model-health registry as a fresh runtime has them, whatever the file before
// it injected or opened.
beforeAll(resetModels);

holdLogsUntilFailure();
