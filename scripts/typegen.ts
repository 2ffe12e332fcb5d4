/**
 * `npm run cf-typegen` writes every Worker's Env type with `wrangler types`; `npm run types:check`
 * (part of `npm test`) fails when one is out of date. A Worker's type covers its production config
 * and its local copy (see writeTypesConfig); the test harness's comes from the test pool's config.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { writeTestConfig, writeTypesConfig } from "./lib/configs.ts";
import { root, runWrangler } from "./lib/wrangler.ts";

const { values: args } = parseArgs({ options: { check: { type: "boolean", default: false } } });

const targets: [envInterface: string, output: string, config: string][] = [
	["StatusEnv", "workers/status/worker-configuration.d.ts", writeTypesConfig("status")],
	["ConsumerEnv", "workers/consumer/worker-configuration.d.ts", writeTypesConfig("consumer")],
	["WebhooksEnv", "workers/webhooks/worker-configuration.d.ts", writeTypesConfig("webhooks")],
	["TestEnv", "test/worker-configuration.d.ts", writeTestConfig()],
	["NaiveConsumerEnv", "bench/naive-consumer/worker-configuration.d.ts", "bench/naive-consumer/wrangler.jsonc"],
];

let failed = 0;
for (const [envInterface, output, config] of targets) {
	const result = await runWrangler([
		"types",
		output,
		"-c",
		path.relative(root, path.resolve(root, config)),
		"--env-interface",
		envInterface,
		"--include-runtime=false",
		"--strict-vars=false",
		...(args.check ? ["--check"] : []),
	]);
	if (result.code === 0) continue;
	failed++;
	process.stderr.write(
		`${output} (${config}):\n${result.stdout}${result.stderr}\nRegenerate with: npm run cf-typegen\n`,
	);
}
if (failed === 0)
	console.log(`Env types ${args.check ? "are up to date" : "written"}: ${targets.map((t) => t[1]).join(", ")}`);
process.exit(failed > 0 ? 1 : 0);
