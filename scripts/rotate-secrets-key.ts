/**
 * `npm run secrets:rotate`: moves every sealed webhook secret to a new WEBHOOK_SECRETS_KEY.
 *
 *   WEBHOOK_SECRETS_KEY_OLD=<the key now in use> npm run secrets:rotate
 *   WEBHOOK_SECRETS_KEY_OLD=… WEBHOOK_SECRETS_KEY_NEW=… npm run secrets:rotate   (a chosen new key)
 *
 * Sets, on the status and the webhooks Worker alike (`wrangler secret bulk`), WEBHOOK_SECRETS_KEY to
 * the new key and WEBHOOK_SECRETS_KEY_PREVIOUS to the old one. Both then open values sealed with
 * either, and the webhooks Worker's sweep (its cron; `npm run dev`'s loop locally) seals each of
 * them again with the new key (shared/webhooks/secrets-key.ts), the canary last. Once a sweep has
 * run, `wrangler secret delete WEBHOOK_SECRETS_KEY_PREVIOUS` on both ends the rotation.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { workerConfigFiles } from "./lib/configs.ts";
import { runWrangler } from "./lib/wrangler.ts";

/** The Workers that seal or open webhook secrets. */
const WORKERS = [workerConfigFiles.webhooks, workerConfigFiles.status];

async function main() {
	const old = process.env.WEBHOOK_SECRETS_KEY_OLD;
	if (!old || old.length < 16) {
		throw new Error(
			"give the key now in use: WEBHOOK_SECRETS_KEY_OLD=… npm run secrets:rotate (a secret cannot be read back)",
		);
	}
	const given = process.env.WEBHOOK_SECRETS_KEY_NEW;
	if (given !== undefined && given.length < 16)
		throw new Error("WEBHOOK_SECRETS_KEY_NEW must be 16 characters or more");
	const next = given ?? randomBytes(32).toString("base64url");
	if (next === old) throw new Error("the new key is the old one");
	const dir = mkdtempSync(path.join(tmpdir(), "r2-captions-rotate-"));
	try {
		const file = path.join(dir, "secrets.json");
		writeFileSync(file, JSON.stringify({ WEBHOOK_SECRETS_KEY: next, WEBHOOK_SECRETS_KEY_PREVIOUS: old }), {
			mode: 0o600,
		});
		for (const config of WORKERS) {
			console.log(`▸ WEBHOOK_SECRETS_KEY and WEBHOOK_SECRETS_KEY_PREVIOUS on ${config}`);
			const result = await runWrangler(["secret", "bulk", file, "-c", config]);
			if (result.code !== 0) {
				process.stderr.write(result.stdout + result.stderr);
				throw new Error(
					`setting the secrets of ${config} failed (wrangler exited ${result.code}); run the command again`,
				);
			}
		}
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
	if (given === undefined) console.log(`\nThe new WEBHOOK_SECRETS_KEY (shown once, keep it): ${next}`);
	console.log(
		"\nThe webhooks Worker's next sweep seals every secret again with it. Then, on both Workers:\n" +
			WORKERS.map((c) => `  npm run wrangler -- secret delete WEBHOOK_SECRETS_KEY_PREVIOUS -c ${c}`).join("\n"),
	);
}

main().then(
	() => process.exit(0),
	(err: unknown) => {
		console.error(`\nnpm run secrets:rotate: ${err instanceof Error ? err.message : String(err)}`);
		process.exit(1);
	},
);
