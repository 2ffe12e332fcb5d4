/**
 * `npm run deploy` against a stand-in wrangler (test/node/support/fake-wrangler.sh) and a stand-in
 * Cloudflare API on loopback: what it says the plan needs, the workers.dev subdomain check, the
 * one-time licence prompt of llama-3.2-11b-vision, and one WEBHOOK_SECRETS_KEY for every Worker.
 * Also how the scripts (scripts/lib/args.ts) answer a mistyped option.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerConfigFiles } from "../../scripts/lib/configs.ts";

const root = path.join(import.meta.dirname, "../..");

interface Call {
	args: string[];
	secrets: Record<string, string> | null;
}

let api: Server;
let apiOrigin = "";

/**
 * What the stand-in Cloudflare API answers one test, and what it received for it. Each test has
 * its own base URL (/<n>/client/v4), so that the tests can run at the same time.
 */
interface Account {
	subdomain: string | null;
	received: { method: string; url: string; body: string }[];
}
const accounts: Account[] = [];

/** A stand-in account and the API base URL that reaches it. */
function account(subdomain: string | null): Account & { base: string } {
	const created: Account = { subdomain, received: [] };
	accounts.push(created);
	return Object.assign(created, { base: `${apiOrigin}/${accounts.length - 1}/client/v4` });
}

beforeAll(async () => {
	api = createServer((req, res) => {
		let body = "";
		req.on("data", (c: Buffer) => {
			body += c;
		});
		req.on("end", () => {
			const [, n = "", ...rest] = (req.url ?? "").split("/");
			const url = `/${rest.join("/")}`;
			const to = accounts[Number(n)];
			if (!to) return res.writeHead(404).end();
			to.received.push({ method: req.method ?? "", url, body });
			if (url.endsWith("/workers/subdomain")) {
				if (to.subdomain === null) res.writeHead(404).end(JSON.stringify({ success: false }));
				else res.writeHead(200).end(JSON.stringify({ success: true, result: { subdomain: to.subdomain } }));
			} else res.writeHead(200).end(JSON.stringify({ success: true, result: { response: "Thank you for agreeing" } }));
		});
	});
	await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
	apiOrigin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => api.close(() => r())));

/** Runs one of the repository's scripts against the stand-in wrangler; what it printed and wrangler's calls. */
async function runScript(
	script: string,
	env: Record<string, string>,
	args: string[] = [],
): Promise<{ code: number; out: string; calls: Call[] }> {
	const log = path.join(mkdtempSync(path.join(tmpdir(), "r2c-deploy-")), "calls.jsonl");
	writeFileSync(log, "");
	const child = spawn(process.execPath, [path.join(root, "scripts", script), ...args], {
		cwd: root,
		env: {
			PATH: process.env.PATH ?? "",
			R2C_WRANGLER_BIN: path.join(root, "test/node/support/fake-wrangler.sh"),
			FAKE_WRANGLER_LOG: log,
			...env,
		},
	});
	let out = "";
	child.stdout.on("data", (c: Buffer) => {
		out += c;
	});
	child.stderr.on("data", (c: Buffer) => {
		out += c;
	});
	const code = await new Promise<number>((r) => child.on("close", (c) => r(c ?? 1)));
	const calls = readFileSync(log, "utf8")
		.split("\n")
		.filter(Boolean)
		.map((line) => JSON.parse(line) as Call);
	return { code, out, calls };
}

const deploy = (env: Record<string, string>) => runScript("deploy.ts", env);

const deploys = (calls: Call[]) => calls.filter((c) => c.args[0] === "deploy");
/** The WEBHOOK_SECRETS_KEY each deployment of a Worker that needs it (status, webhooks) was given. */
const sealingKeys = (calls: Call[]) =>
	deploys(calls)
		.filter((c) => !c.args.includes(workerConfigFiles.consumer))
		.map((c) => c.secrets?.WEBHOOK_SECRETS_KEY);
const withToken = (to: { base: string }) => ({
	CLOUDFLARE_API_TOKEN: "token",
	CLOUDFLARE_ACCOUNT_ID: "acc",
	CLOUDFLARE_API_BASE_URL: to.base,
});

// Each test runs `npm run deploy` (a dozen wrangler calls) against an account of its own.
describe.concurrent("npm run deploy", () => {
	it("says the plan it needs, checks the subdomain, accepts the llama-3.2 licence once and gives every Worker one WEBHOOK_SECRETS_KEY", async () => {
		const team = account("team");
		const { code, out, calls } = await deploy(withToken(team));
		expect(code, out).toBe(0);
		expect(out).toContain("needs the Workers Paid plan");
		expect(out).toContain("workers.dev subdomain: team.workers.dev");
		const agree = team.received.filter((r) => r.method === "POST");
		expect(agree).toEqual([
			{
				method: "POST",
				url: "/client/v4/accounts/acc/ai/run/@cf/meta/llama-3.2-11b-vision-instruct",
				body: '{"prompt":"agree"}',
			},
		]);
		const sealing = sealingKeys(calls);
		expect(sealing).toHaveLength(2);
		expect(new Set(sealing).size).toBe(1);
		expect(sealing[0]).toEqual(expect.any(String));
	});

	it("fails clearly, before deploying anything, when the account has no workers.dev subdomain", async () => {
		const { code, out, calls } = await deploy(withToken(account(null)));
		expect(code).toBe(1);
		expect(out).toContain("the account has no workers.dev subdomain");
		expect(deploys(calls)).toEqual([]);
	});

	it("without an API token, says how to accept the licence; a wrangler refusal for want of a subdomain reads the same", async () => {
		const [{ code, out }, ok] = await Promise.all([deploy({ FAKE_WRANGLER_NO_SUBDOMAIN: "1" }), deploy({})]);
		expect(code).toBe(1);
		expect(out).toContain("not checked (no CLOUDFLARE_API_TOKEN");
		expect(out).toContain("the account has no workers.dev subdomain");
		expect(ok.code, ok.out).toBe(0);
		expect(ok.out).toContain(`'{"prompt":"agree"}'`);
	});

	it("--print shows every step, the account checks and the licence as the real run would do them, and runs none", async () => {
		const team = account("team");
		const [bare, token] = await Promise.all([
			runScript("deploy.ts", {}, ["--print"]),
			runScript("deploy.ts", withToken(team), ["--print"]),
		]);
		for (const { code, out, calls } of [bare, token]) {
			expect(code, out).toBe(0);
			expect(calls).toEqual([]);
			expect(out).toContain("▸ (the real run) wrangler whoami");
			expect(out).toContain("wrangler r2 bucket create images ");
			expect(out).toContain("wrangler r2 bucket create r2-captions-archive ");
			expect(out).toContain("▸ (the real run) the licence of @cf/meta/llama-3.2-11b-vision-instruct");
			expect(out).toMatch(/\(--print: nothing was run\.\)\n$/);
		}
		expect(bare.out).toContain("▸ (the real run) workers.dev subdomain: not checked (no CLOUDFLARE_API_TOKEN");
		expect(bare.out).toContain(`-d '{"prompt":"agree"}'`);
		expect(token.out).toContain(`workers.dev subdomain: GET ${team.base}/accounts/acc/workers/subdomain`);
		expect(token.out).toContain(`POST ${team.base}/accounts/acc/ai/run/@cf/meta/llama-3.2-11b-vision-instruct`);
		expect(team.received).toEqual([]);
	});

	it("refuses to leave one Worker with a WEBHOOK_SECRETS_KEY the other lacks, unless the value is given", async () => {
		const existing = `${workerConfigFiles.status}:ADMIN_TOKEN,WEBHOOK_SECRETS_KEY`;
		const [refused, given] = await Promise.all([
			deploy({ FAKE_WRANGLER_SECRETS: existing }),
			deploy({ FAKE_WRANGLER_SECRETS: existing, WEBHOOK_SECRETS_KEY: "a-given-sealing-key-value" }),
		]);
		expect(refused.code).toBe(1);
		expect(refused.out).toContain("WEBHOOK_SECRETS_KEY is set on");
		expect(deploys(refused.calls)).toEqual([]);
		expect(given.code, given.out).toBe(0);
		expect(sealingKeys(given.calls)).toEqual(["a-given-sealing-key-value", "a-given-sealing-key-value"]);
	});
});

describe.concurrent("a mistyped option", () => {
	it("stops npm run deploy, dev and demo with one line naming it and the valid ones, exit code 1", async () => {
		const [deploy, dev, demo] = await Promise.all([
			runScript("deploy.ts", {}, ["--dry-run"]),
			runScript("dev.ts", {}, ["--prot", "1"]),
			runScript("demo.ts", {}, ["--port", "8790"]),
		]);
		expect(deploy).toEqual({
			code: 1,
			out: "npm run deploy: Unknown option '--dry-run'; the options are --print (for a dry run use --print: it shows every command and runs nothing)\n",
			calls: [],
		});
		expect(dev.code).toBe(1);
		expect(dev.out).toBe(
			"npm run dev: Unknown option '--prot'; the options are --port <value>, --persist-to <value>, --remote-ai, " +
				"--no-watch, --var <value>, --sweep-every <value>, --stale-after <value>, --inspector-port <value>\n",
		);
		expect(demo.code).toBe(1);
		expect(demo.out).toBe(
			"npm run demo: Unknown option '--port'; it takes no options (the API's URL comes from API_URL: API_URL=http://localhost:8790 npm run demo)\n",
		);
	});
});

describe.concurrent("npm run secrets:rotate", () => {
	const rotate = (env: Record<string, string>) => runScript("rotate-secrets-key.ts", env);

	it("sets the new key and the old one as previous on both the status and the webhooks Worker", async () => {
		const { code, out, calls } = await rotate({
			WEBHOOK_SECRETS_KEY_OLD: "the-old-sealing-key-value",
			WEBHOOK_SECRETS_KEY_NEW: "the-new-sealing-key-value",
		});
		expect(code, out).toBe(0);
		const set = calls.filter((c) => c.args[0] === "secret" && c.args[1] === "bulk");
		expect(set.map((c) => c.args[c.args.indexOf("-c") + 1]).sort()).toEqual(
			[workerConfigFiles.status, workerConfigFiles.webhooks].sort(),
		);
		for (const call of set) {
			expect(call.secrets).toEqual({
				WEBHOOK_SECRETS_KEY: "the-new-sealing-key-value",
				WEBHOOK_SECRETS_KEY_PREVIOUS: "the-old-sealing-key-value",
			});
		}
		expect(out).toContain("secret delete WEBHOOK_SECRETS_KEY_PREVIOUS");
	});

	it("needs the key in use, since a secret cannot be read back", async () => {
		const { code, out, calls } = await rotate({});
		expect(code).toBe(1);
		expect(out).toContain("WEBHOOK_SECRETS_KEY_OLD");
		expect(calls).toEqual([]);
	});
});
