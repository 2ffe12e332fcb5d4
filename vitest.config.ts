import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { writeTestConfig } from "./scripts/lib/configs.ts";

export default defineConfig(async () => {
	const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
	// Every Worker's production config, merged and with the test overrides (scripts/lib/configs.ts).
	const configPath = writeTestConfig();
	return {
		test: {
			globalSetup: ["./test/support/global-setup.ts"],
			// The Workers log a JSON line per job; show them only for tests that fail.
			silent: "passed-only" as const,
			testTimeout: 30_000,
			// Most of a test's time is spent waiting (workerd, queues, the dev stack), not computing:
			// vitest's default (one file at a time on a 2-core machine) left the CPU idle. Each workerd
			// file still gets its own runtime and storage, so files do not share data.
			maxWorkers: 4,
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
						setupFiles: ["./test/setup.ts"],
						testTimeout: 30_000,
					},
				},
				{
					// In Node: what has to run outside workerd (OpenAPI validation, wrangler, the dev server).
					test: {
						name: "node",
						include: ["test/node/**/*.test.ts"],
						environment: "node",
						testTimeout: 120_000,
					},
				},
			],
		},
	};
});
