/**
 * `npm run cf-typegen` writes every Worker's Env type as `wrangler types` does; `npm run types:check`
 * (part of `npm test`) fails when one is out of date. A Worker's type covers its production config
 * and its local copy (see writeTypesConfig); the test harness's comes from the test pool's config.
 *
 * The five files come from wrangler's own generator (the one `wrangler types` runs, byte for byte
 * the same file, its header naming the equivalent command) in this one process: five `wrangler
 * types` processes took 11 CPU-seconds, each loading wrangler again.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { scriptArgs } from "./lib/args.ts";
import { writeTestConfig, writeTypesConfig } from "./lib/configs.ts";
import { root, wranglerApi } from "./lib/wrangler.ts";

const { values: args } = scriptArgs("npm run cf-typegen", { options: { check: { type: "boolean", default: false } } });

const targets: [envInterface: string, output: string, config: string][] = [
	["StatusEnv", "workers/status/worker-configuration.d.ts", writeTypesConfig("status")],
	["ConsumerEnv", "workers/consumer/worker-configuration.d.ts", writeTypesConfig("consumer")],
	["WebhooksEnv", "workers/webhooks/worker-configuration.d.ts", writeTypesConfig("webhooks")],
	["TestEnv", "test/worker-configuration.d.ts", writeTestConfig()],
	["NaiveConsumerEnv", "bench/naive-consumer/worker-configuration.d.ts", "bench/naive-consumer/wrangler.jsonc"],
];

const read = (file: string) => {
	try {
		return readFileSync(file, "utf8");
	} catch {
		return null;
	}
};

// wrangler resolves the paths it is given against the working directory, and names them so in the
// file's header: the same relative paths as `wrangler types` run from the root.
process.chdir(root);
const { experimental_generateTypes: generateTypes } = wranglerApi();
const stale: string[] = [];
for (const [envInterface, output, config] of targets) {
	const { content } = await generateTypes({
		config: path.relative(root, path.resolve(root, config)),
		path: output,
		envInterface,
		includeRuntime: false,
		strictVars: false,
	});
	if (read(output) === content) continue;
	if (args.check) stale.push(`${output} (${config})`);
	else writeFileSync(output, content);
}
if (stale.length > 0) {
	process.stderr.write(
		`Env types out of date:\n${stale.map((s) => `  ${s}\n`).join("")}Regenerate with: npm run cf-typegen\n`,
	);
	process.exit(1);
}
console.log(`Env types ${args.check ? "are up to date" : "written"}: ${targets.map((t) => t[1]).join(", ")}`);
