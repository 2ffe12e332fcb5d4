/**
 * A stand-in for wrangler in the deploy tests (R2C_WRANGLER_BIN): it logs each call as a JSON line
 * to FAKE_WRANGLER_LOG (with the secrets a `deploy --secrets-file` would set) and answers as a
 * logged-in wrangler would. FAKE_WRANGLER_SECRETS maps a config path to the secrets its Worker
 * already has; FAKE_WRANGLER_NO_SUBDOMAIN makes `deploy` fail as it does on an account without one.
 * Plain JavaScript: the tests start it about eighty-five times, and Node would strip a TypeScript
 * file's types at each start.
 */
import { appendFileSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
const config = args[args.indexOf("-c") + 1] ?? "";
// `deploy --secrets-file F` and `secret bulk F` both set the secrets a JSON file holds.
const secretsFile = args.includes("--secrets-file")
	? args[args.indexOf("--secrets-file") + 1]
	: args[0] === "secret" && args[1] === "bulk"
		? args[2]
		: undefined;
const secrets = secretsFile ? JSON.parse(readFileSync(secretsFile, "utf8")) : null;
appendFileSync(process.env.FAKE_WRANGLER_LOG ?? "/dev/null", `${JSON.stringify({ args, secrets })}\n`);

const existing = JSON.parse(process.env.FAKE_WRANGLER_SECRETS ?? "{}");
const [command, sub] = args;
if (command === "whoami") {
	console.log("You are logged in with an API Token.");
} else if (command === "d1" && sub === "list") {
	console.log(JSON.stringify([{ name: "r2-captions", uuid: "00000000-0000-0000-0000-000000000000" }]));
} else if (command === "secret" && sub === "list") {
	console.log(JSON.stringify((existing[config] ?? []).map((name) => ({ name, type: "secret_text" }))));
} else if (command === "deploy") {
	if (process.env.FAKE_WRANGLER_NO_SUBDOMAIN) {
		console.error("✘ [ERROR] You need to register a workers.dev subdomain before publishing to workers.dev");
		process.exit(1);
	}
	console.log(`Deployed ${config}\n  https://${config.replace(/\W+/g, "-")}.team.workers.dev`);
}
