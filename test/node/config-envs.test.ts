/**
 * Wrangler environments repeat every var, secret and binding of the top level (none is
 * inherited). These checks keep `[env.production]` (what `npm run deploy` ships) and
 * `[env.remote-ai]` (`npm run dev -- --remote-ai`) equal to the top level that the tests and
 * `npm run dev` exercise, except for the settings each environment exists to change.
 */
import { describe, expect, it } from "vitest";
import { readWorkerConfig as read, readResolvedConfig } from "../../scripts/lib/worker-config.ts";
import { workerConfigs } from "../../scripts/lib/wrangler.ts";

/** What an environment may set differently from the top level, per var. */
const overrides: Record<string, Record<string, string>> = {
	production: { DEPLOY_MODE: "production", MODEL_BACKEND: "workers-ai" },
	"remote-ai": { MODEL_BACKEND: "workers-ai" },
};

/**
 * The parts of a resolved config that must travel into every environment: every binding kind
 * wrangler does not inherit, plus what the Worker runs. Only the D1 database id may differ.
 */
const travelling = [
	"main",
	"compatibility_date",
	"compatibility_flags",
	"triggers",
	"secrets",
	"r2_buckets",
	"queues",
	"images",
	"durable_objects",
	"kv_namespaces",
	"services",
	"workflows",
	"analytics_engine_datasets",
	"hyperdrive",
	"vectorize",
	"browser",
	"send_email",
	"ratelimits",
	"secrets_store_secrets",
	"version_metadata",
];

function deployedShape(file: string, env?: string) {
	const config = readResolvedConfig(file, env);
	const shape = Object.fromEntries(travelling.map((key) => [key, config[key]]));
	const { d1_databases } = read(file, env);
	return { ...shape, d1_databases: d1_databases.map(({ database_id: _id, ...rest }) => rest) };
}

describe.each(workerConfigs())("%s", (file) => {
	const top = read(file);

	it.each(Object.keys(overrides))("[env.%s] has every var, secret and binding of the top level", (env) => {
		const config = read(file, env);
		expect(deployedShape(file, env)).toEqual(deployedShape(file));
		const expectedVars: Record<string, unknown> = { ...top.vars };
		for (const [name, value] of Object.entries(overrides[env] ?? {})) {
			if (name in expectedVars) expectedVars[name] = value;
		}
		expect(config.vars).toEqual(expectedVars);
	});

	it("[env.production] keeps the Worker's name and runs the real Workers AI where a model is called", () => {
		const config = read(file, "production");
		expect(config.name).toBe(top.name);
		if ("MODEL_BACKEND" in top.vars) expect(config.ai?.binding).toBe("AI");
	});

	it("[env.remote-ai] uses the local D1 state of `npm run dev` (same placeholder id) and a remote AI binding", () => {
		const config = read(file, "remote-ai");
		expect(config.d1_databases.map((d) => d.database_id)).toEqual(top.d1_databases.map((d) => d.database_id));
		if ("MODEL_BACKEND" in top.vars) expect(config.ai).toMatchObject({ binding: "AI", remote: true });
		else expect(config.ai).toBeUndefined();
	});

	it("the top level (local development and tests) needs no Cloudflare login: no AI binding", () => {
		expect(top.ai).toBeUndefined();
	});
});
