/**
 * `npm run deploy`: puts the service on a Cloudflare account (`npm run wrangler -- login` first).
 * Creates what the Workers bind to (R2 buckets, queues and their dead-letter queues, D1 database),
 * writes the database id into every Worker's wrangler.jsonc (the production configs), applies the
 * migrations, adds the bucket's object-create and object-delete notification rules to `caption-jobs`, and deploys
 * every Worker, setting its secrets. Safe to run again: what exists is kept.
 *
 *   npm run deploy                  deploy
 *   npm run deploy -- --print       print the commands and what the real run checks (runs nothing; no login needed)
 *
 * Secrets: a value in the environment (ADMIN_TOKEN=… npm run deploy) is set; a secret the Worker
 * already has is kept; a missing one is generated and printed once at the end. A secret that two
 * Workers must share (WEBHOOK_SECRETS_KEY) is generated once for both, and a deployment that would
 * leave one Worker with a value the other does not have stops before deploying anything.
 *
 * The account: it says first what plan the service needs; with CLOUDFLARE_API_TOKEN and
 * CLOUDFLARE_ACCOUNT_ID it also checks that the account has a workers.dev subdomain (the status
 * Worker's URL) and accepts the llama-3.2-11b-vision licence once (scripts/lib/cloudflare-account.ts);
 * without them it says how to do both by hand.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { scriptArgs } from "./lib/args.ts";
import {
	type AccountApi,
	acceptModelLicence,
	accountApi,
	agreeCommand,
	LICENCE_URL,
	LICENSED_MODEL,
	PLAN_REQUIREMENTS,
	workersDevSubdomain,
} from "./lib/cloudflare-account.ts";
import { productionConfigs, setDatabaseId, workerConfigFiles } from "./lib/configs.ts";
import { queueNames, readDeployConfig } from "./lib/worker-config.ts";
import { databaseName, runWrangler } from "./lib/wrangler.ts";

const { values: args } = scriptArgs(
	"npm run deploy",
	{ options: { print: { type: "boolean", default: false } } },
	{ "--dry-run": "for a dry run use --print: it shows every command and runs nothing" },
);
const NOTIFIED_QUEUE = "caption-jobs";
const PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000";

/** Runs one wrangler step; "already exists" counts as done, anything else stops the deployment. */
async function step(title: string, wranglerArgs: string[], options: { idempotent?: boolean } = {}) {
	console.log(`\n▸ ${title}\n  wrangler ${wranglerArgs.join(" ")}`);
	if (args.print) return "";
	const result = await runWrangler(wranglerArgs, { echo: false });
	const output = result.stdout + result.stderr;
	if (result.code === 0) return result.stdout;
	if (/workers\.dev subdomain/i.test(output)) {
		process.stderr.write(output);
		throw new Error(NO_SUBDOMAIN);
	}
	if (options.idempotent && /already exists|already taken|already in use|conflict|duplicate/i.test(output)) {
		console.log("  (already there)");
		return result.stdout;
	}
	process.stderr.write(output);
	throw new Error(`${title} failed (wrangler exited ${result.code})`);
}

const NO_SUBDOMAIN =
	"the account has no workers.dev subdomain, which the status Worker's URL needs: register one in the Cloudflare dashboard (Workers & Pages → your subdomain), then run npm run deploy again";

/**
 * --print: the account checks the real run makes before creating anything, which call no wrangler
 * command and so have no command line to show.
 */
function printAccountChecks(api: AccountApi | null) {
	console.log("\n▸ (the real run) wrangler whoami: stops unless wrangler is logged in");
	console.log(
		api
			? `\n▸ (the real run) workers.dev subdomain: GET ${api.base}/accounts/${api.accountId}/workers/subdomain; without one it stops here, before creating anything`
			: "\n▸ (the real run) workers.dev subdomain: not checked (no CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID); without one the first wrangler deploy fails",
	);
}

/** --print: the licence step the real run ends with. */
function printLicenceStep(api: AccountApi | null) {
	const title = `\n▸ (the real run) the licence of ${LICENSED_MODEL} (${LICENCE_URL}), once per account`;
	console.log(
		api
			? `${title}: sends the prompt 'agree'\n  POST ${api.base}/accounts/${api.accountId}/ai/run/${LICENSED_MODEL} {"prompt":"agree"}`
			: `${title}: no CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID, so it prints the command to run by hand\n  ${agreeCommand()}`,
	);
}

/** Secrets more than one Worker needs with the same value. */
function sharedSecretNames(configs: { config: { secrets?: { required?: string[] } } }[]): Set<string> {
	const seen = new Map<string, number>();
	for (const { config } of configs) {
		for (const name of config.secrets?.required ?? []) seen.set(name, (seen.get(name) ?? 0) + 1);
	}
	return new Set([...seen].filter(([, n]) => n > 1).map(([name]) => name));
}

function databaseId(listJson: string): string {
	const databases = JSON.parse(listJson.slice(listJson.indexOf("["))) as { name: string; uuid: string }[];
	const found = databases.find((d) => d.name === databaseName);
	if (!found) throw new Error(`D1 database ${databaseName} is not in \`wrangler d1 list\` after creating it`);
	return found.uuid;
}

function generateSecret(name: string): string {
	// Standard Webhooks secrets are base64 with a whsec_ prefix; other tokens are opaque.
	return name.endsWith("WEBHOOK_SECRET")
		? `whsec_${randomBytes(32).toString("base64")}`
		: randomBytes(32).toString("base64url");
}

async function existingSecrets(config: string): Promise<Set<string>> {
	if (args.print) return new Set();
	const result = await runWrangler(["secret", "list", "-c", config, "--format", "json"]);
	if (result.code !== 0) return new Set(); // the Worker does not exist yet
	try {
		const list = JSON.parse(result.stdout.slice(result.stdout.indexOf("["))) as { name: string }[];
		return new Set(list.map((s) => s.name));
	} catch {
		return new Set();
	}
}

async function main() {
	const configs = productionConfigs;
	const resolved = configs.map((file) => ({ file, config: readDeployConfig(file) }));

	console.log(PLAN_REQUIREMENTS);
	const api = accountApi();
	if (args.print) printAccountChecks(api);
	else {
		const who = await runWrangler(["whoami"]);
		if (who.code !== 0 || /not authenticated/i.test(who.stdout)) {
			throw new Error("wrangler is not logged in: run `npm run wrangler -- login` (or set CLOUDFLARE_API_TOKEN)");
		}
		if (api) {
			const subdomain = await workersDevSubdomain(api);
			if (subdomain === null) throw new Error(NO_SUBDOMAIN);
			console.log(`\n▸ workers.dev subdomain: ${subdomain}.workers.dev`);
		} else {
			console.log("\n▸ workers.dev subdomain: not checked (no CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)");
		}
	}

	// Every Worker's secrets are read first: a shared one must end up with one value everywhere.
	const have = new Map<string, Set<string>>();
	for (const { file } of resolved) have.set(file, await existingSecrets(file));
	for (const name of sharedSecretNames(resolved)) {
		if (process.env[name]) continue;
		const holders = resolved.filter(
			({ file, config }) => config.secrets?.required?.includes(name) && have.get(file)?.has(name),
		);
		const needers = resolved.filter(({ config }) => config.secrets?.required?.includes(name));
		if (holders.length > 0 && holders.length < needers.length) {
			throw new Error(
				`${name} is set on ${holders.map((h) => h.config.name).join(", ")} but not on ${needers
					.filter((n) => !holders.includes(n))
					.map((n) => n.config.name)
					.join(
						", ",
					)}; a secret cannot be read back, so give the value: ${name}=… npm run deploy (or rotate it: docs/security.md)`,
			);
		}
	}

	const buckets = [...new Set(resolved.flatMap(({ config }) => config.r2_buckets.map((b) => b.bucket_name ?? "")))];
	for (const bucket of buckets.filter(Boolean)) {
		await step(`R2 bucket ${bucket}`, ["r2", "bucket", "create", bucket, "--update-config=false"], {
			idempotent: true,
		});
	}
	const queues = [...new Set(resolved.flatMap(({ config }) => queueNames(config)))].sort();
	for (const queue of queues) await step(`Queue ${queue}`, ["queues", "create", queue], { idempotent: true });

	await step(`D1 database ${databaseName}`, ["d1", "create", databaseName, "--update-config=false"], {
		idempotent: true,
	});
	// `d1 list`, not `d1 info`: info would resolve the name through the local config's placeholder id.
	const list = await step("D1 database id", ["d1", "list", "--json"]);
	const id = args.print ? "<database id>" : databaseId(list);
	if (!args.print) {
		for (const { file } of resolved) {
			if (setDatabaseId(file, "DB", id)) console.log(`  wrote database_id ${id} into ${file}`);
		}
	} else {
		console.log(`  then: database_id of ${configs.join(", ")} (now ${PLACEHOLDER_ID})`);
	}
	await step("D1 migrations (remote)", [
		"d1",
		"migrations",
		"apply",
		databaseName,
		"--remote",
		"-c",
		workerConfigFiles.status,
	]);

	// The images bucket (the `BUCKET` binding) only: the consumer's retention archive is another
	// bucket, and a notification there would caption the archive's own files.
	const bucket =
		resolved.flatMap(({ config }) => config.r2_buckets).find((b) => b.binding === "BUCKET")?.bucket_name ?? "images";
	// Creates make jobs; deletes let retention delete a gone object's jobs (docs/data.md#retention).
	for (const eventType of ["object-create", "object-delete"]) {
		await step(
			`R2 notification: ${eventType} on ${bucket} → ${NOTIFIED_QUEUE}`,
			["r2", "bucket", "notification", "create", bucket, "--event-type", eventType, "--queue", NOTIFIED_QUEUE],
			{ idempotent: true },
		);
	}

	// Consumers first, the public API last: nothing is accepted before it can be processed.
	const isStatus = (file: string) => Number(file === workerConfigFiles.status);
	const order = [...resolved].sort((a, b) => isStatus(a.file) - isStatus(b.file));
	const generated: Record<string, string> = {};
	const urls: string[] = [];
	const secretsDir = mkdtempSync(path.join(tmpdir(), "r2-captions-secrets-"));
	try {
		for (const { file, config } of order) {
			const existing = have.get(file) ?? new Set<string>();
			const toSet: Record<string, string> = {};
			for (const name of config.secrets?.required ?? []) {
				const given = process.env[name];
				if (given) toSet[name] = given;
				else if (args.print) toSet[name] = "<from the environment, kept, or generated>";
				else if (!existing.has(name)) toSet[name] = generated[name] ??= generateSecret(name);
			}
			const deployArgs = ["deploy", "-c", file];
			if (Object.keys(toSet).length > 0) {
				const secretsFile = path.join(secretsDir, `${config.name}.json`);
				writeFileSync(secretsFile, JSON.stringify(toSet), { mode: 0o600 });
				deployArgs.push("--secrets-file", secretsFile);
			}
			const out = await step(
				`Deploy ${config.name} (secrets set: ${Object.keys(toSet).join(", ") || "none"})`,
				deployArgs,
			);
			urls.push(...(out.match(/https:\/\/\S+\.workers\.dev/g) ?? []));
		}
	} finally {
		rmSync(secretsDir, { recursive: true, force: true });
	}

	if (args.print) {
		printLicenceStep(api);
		console.log("\n(--print: nothing was run.)");
		return;
	}
	if (api) {
		console.log(`\n▸ Accepting the licence of ${LICENSED_MODEL} for this account (${LICENCE_URL})`);
		await acceptModelLicence(api);
	} else {
		console.log(
			`\n${LICENSED_MODEL}, last in the default chain, needs its licence (${LICENCE_URL}) accepted once per account; until then it answers 5016 and is skipped. To accept it:\n  ${agreeCommand()}`,
		);
	}
	console.log("\nDeployed.");
	for (const url of urls) console.log(`  ${url}`);
	for (const [name, value] of Object.entries(generated)) {
		console.log(`  generated ${name}: ${value}   (shown once; keep it: \`wrangler secret put ${name}\` to change it)`);
	}
}

main().then(
	() => process.exit(0),
	(err: unknown) => {
		console.error(`\nnpm run deploy: ${err instanceof Error ? err.message : String(err)}`);
		process.exit(1);
	},
);
