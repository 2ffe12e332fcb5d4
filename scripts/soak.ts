/**
 * `npm run soak` (not part of `npm test`): 10,000 images through `npm run dev`
 * with 10 % transient model faults (EMULATOR_FAULT_RATE), a webhook receiver that answers 500 to
 * 10 % of deliveries, and one SIGKILL of the whole dev stack (npm, the launcher, wrangler, workerd)
 * in the middle of the uploads. The stack is started again on the same local state, the uploads
 * whose requests failed are sent again (identical bytes, as a client would), and nothing else is
 * done. Then it checks: 0 jobs lost (a job for every key), 100 % terminal, exactly one verified
 * webhook id per job and endpoint. Exit code 1 when a check fails.
 *
 * Every upload has a callback URL besides the subscription: two endpoints per job.
 *
 *   npm run soak
 *   npm run soak -- --images 2000 --kill-at 0.3 --no-callbacks
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { z } from "zod";
import { reporter } from "../cli/progress.ts";
import { type DevStack, spawnDevStack } from "./lib/dev-stack.ts";
import { readDevVars } from "./lib/dev-vars.ts";
import { type Delivery, startReceiver } from "./lib/webhook-receiver.ts";
import { root } from "./lib/wrangler.ts";

const number = (min: number, max: number) => (value: string) => {
	const n = Number(value);
	if (!Number.isFinite(n) || n < min || n > max)
		throw new InvalidArgumentError(`expected a number in [${min}, ${max}]`);
	return n;
};

const options = new Command("soak")
	.description("10,000 images through npm run dev with model faults, receiver failures and a SIGKILL")
	.option("--images <n>", "images to upload", number(1, 1_000_000), 10_000)
	.option("--fault-rate <share>", "share of model calls failing with the transient 3040", number(0, 1), 0.1)
	.option("--receiver-failure-rate <share>", "share of deliveries the receiver answers with 500", number(0, 1), 0.1)
	.option("--kill-at <share>", "SIGKILL the dev stack once this share of the uploads is answered", number(0, 1), 0.5)
	.option("--concurrency <n>", "uploads in flight", number(1, 256), 16)
	.option("--no-callbacks", "no callback URL on the uploads (one endpoint per job: the subscription)")
	.option("--timeout <minutes>", "how long to wait for every job and webhook after the last upload", number(1, 600), 30)
	.parse()
	.opts<{
		images: number;
		faultRate: number;
		receiverFailureRate: number;
		killAt: number;
		concurrency: number;
		callbacks: boolean;
		timeout: number;
	}>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const elapsed = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

const persistTo = mkdtempSync(path.join(tmpdir(), "r2-captions-soak-"));
const logFile = path.join(root, ".wrangler/soak-dev-server.log");
// A fresh clone has no .wrangler/ before its first `npm run dev`.
mkdirSync(path.dirname(logFile), { recursive: true });
writeFileSync(logFile, "");
const token = readDevVars().ADMIN_TOKEN ?? "";
const stacks: DevStack[] = [];

/** `npm run dev` in its own process group (as a terminal's foreground job), on the soak's state. */
async function startStack(): Promise<DevStack> {
	const vars = {
		EMULATOR_FAULT_RATE: String(options.faultRate),
		// What is soaked is recovery, not pacing (bench/rate-limit.ts measures that).
		EMULATOR_RATE_LIMITS: "off",
		MODEL_RATE_LIMITS: "off",
	};
	const args = Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}=${v}`]);
	const stack = await spawnDevStack("soak", { persistTo, args, logFile });
	stacks.push(stack);
	await stack.ready(180_000);
	return stack;
}

function cleanUp() {
	for (const s of stacks) s.dispose();
	rmSync(persistTo, { recursive: true, force: true });
}
process.on("SIGINT", () => {
	cleanUp();
	process.exit(130);
});

async function api(stack: DevStack, method: string, route: string, body?: unknown): Promise<Response> {
	return fetch(`${stack.url}${route}`, {
		method,
		headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(60_000),
	});
}

const Job = z.object({ id: z.string(), key: z.string(), status: z.string() });
const JobPage = z.object({ data: z.array(Job), next_cursor: z.string().nullable() });
const TERMINAL = new Set(["succeeded", "failed"]);

async function listJobs(stack: DevStack, prefix: string) {
	const jobs: z.infer<typeof Job>[] = [];
	let cursor: string | null = null;
	do {
		const query = new URLSearchParams({ prefix, limit: "100", ...(cursor ? { cursor } : {}) });
		const page = JobPage.parse(await (await api(stack, "GET", `/v1/jobs?${query}`)).json());
		jobs.push(...page.data);
		cursor = page.next_cursor;
	} while (cursor);
	return jobs;
}

async function main(): Promise<boolean> {
	const startedAt = Date.now();
	const prefix = `soak-${new Date().toISOString().replace(/[:.]/g, "-")}/`;
	console.log(
		`soak: ${options.images} images, model faults ${options.faultRate * 100} %, receiver 500s ${options.receiverFailureRate * 100} %, ` +
			`SIGKILL at ${options.killAt * 100} % of the uploads; state ${persistTo}; dev server log ${path.relative(root, logFile)}`,
	);
	const deliveries: Delivery[] = [];
	const secrets = new Map<string, string>();
	const receiver = await startReceiver(secrets, (d) => deliveries.push(d), {
		failureRate: options.receiverFailureRate,
	});

	let stack = await startStack();
	console.log(`npm run dev answered after ${elapsed(startedAt)}`);
	const created = await api(stack, "POST", "/v1/webhooks", {
		url: receiver.url("/subscription"),
		events: ["job.succeeded", "job.failed"],
		prefix,
	});
	if (created.status !== 201) throw new Error(`subscribing failed: ${created.status} ${await created.text()}`);
	secrets.set("/subscription", z.object({ secret: z.string() }).parse(await created.json()).secret);
	secrets.set("/callback", readDevVars().WEBHOOK_SECRET ?? "");
	const endpoints = options.callbacks ? 2 : 1;

	// Distinct keys, the same small image (the soak is about what happens to jobs, not pixels).
	const bytes = readFileSync(path.join(root, "samples/shapes-on-white.png"));
	const keys = Array.from({ length: options.images }, (_, i) => `${prefix}${String(i).padStart(6, "0")}.png`);
	const upload = async (key: string): Promise<boolean> => {
		try {
			const headers: Record<string, string> = { Authorization: `Bearer ${token}`, "Content-Type": "image/png" };
			if (options.callbacks) headers["X-Callback-Url"] = receiver.url("/callback");
			const res = await fetch(`${stack.url}/v1/images/${encodeURIComponent(key)}`, {
				method: "PUT",
				headers,
				body: bytes,
				signal: AbortSignal.timeout(60_000),
			});
			await res.arrayBuffer();
			return res.status === 202;
		} catch {
			return false;
		}
	};

	// ── Uploads, with the SIGKILL in the middle ──────────────────────────────────────────────
	const uploadStart = Date.now();
	const progress = reporter(false);
	const killAfter = Math.floor(options.images * options.killAt);
	let answered = 0;
	let next = 0;
	const failed: string[] = [];
	let killing: Promise<void> | null = null;
	let killedAt = 0;
	let restartedAfterMs = 0;
	const report = () =>
		progress.update({
			total: options.images,
			done: answered,
			counts: { failed: failed.length, killed: killedAt ? 1 : 0 },
		});
	const worker = async () => {
		while (next < keys.length) {
			if (killing) await killing;
			const key = keys[next++] ?? "";
			if (await upload(key)) answered++;
			else failed.push(key);
			report();
			if (!killing && answered >= killAfter) {
				killing = (async () => {
					killedAt = Date.now();
					const victim = stack;
					await victim.kill();
					progress.line(`SIGKILL of the whole dev stack after ${answered} uploads answered (${elapsed(uploadStart)})`);
					stack = await startStack();
					restartedAfterMs = Date.now() - killedAt;
					progress.line(`npm run dev answered again ${elapsed(killedAt)} after the kill`);
				})();
			}
		}
	};
	await Promise.all(Array.from({ length: options.concurrency }, worker));
	if (killing) await killing;
	// The client re-sends what failed (identical bytes); a failure now is a failure of the soak.
	const resent = failed.splice(0);
	const unsendable: string[] = [];
	for (const key of resent) {
		if (await upload(key)) answered++;
		else unsendable.push(key);
		report();
	}
	progress.stop();
	const uploadSeconds = (Date.now() - uploadStart) / 1000;
	console.log(
		`uploads: ${answered} answered 202 in ${uploadSeconds.toFixed(1)} s, ${resent.length} re-sent after the restart`,
	);

	// ── Waiting: every job terminal, every webhook in ────────────────────────────────────────
	const deadline = Date.now() + options.timeout * 60_000;
	let jobs: z.infer<typeof Job>[] = [];
	for (;;) {
		jobs = await listJobs(stack, prefix).catch(() => jobs);
		const terminal = jobs.filter((j) => TERMINAL.has(j.status)).length;
		const hooked = new Set(deliveries.filter((d) => d.answered === 204).map((d) => `${d.target} ${d.jobId}`)).size;
		console.log(
			`${elapsed(startedAt)}: ${jobs.length} jobs, ${terminal} terminal; ${hooked}/${jobs.length * endpoints} webhooks acknowledged; ${deliveries.length} requests`,
		);
		if (jobs.length >= options.images && terminal === jobs.length && hooked >= jobs.length * endpoints) break;
		if (Date.now() > deadline) break;
		await sleep(10_000);
	}
	const settledSeconds = (Date.now() - startedAt) / 1000;

	// ── Checks ──────────────────────────────────────────────────────────────────────────────
	const keysWithJob = new Set(jobs.map((j) => j.key));
	const lost = keys.filter((k) => !keysWithJob.has(k));
	const notTerminal = jobs.filter((j) => !TERMINAL.has(j.status));
	const unverified = deliveries.filter((d) => !d.verified);
	const ids = new Map<string, Set<string>>();
	for (const d of deliveries.filter((x) => x.verified)) {
		const at = `${d.target} ${d.jobId}`;
		ids.set(at, (ids.get(at) ?? new Set()).add(d.webhookId));
	}
	const jobIds = new Set(jobs.map((j) => j.id));
	const missingHooks = jobs.flatMap((j) =>
		["subscription", ...(options.callbacks ? ["callback"] : [])].filter((t) => !ids.has(`${t} ${j.id}`)),
	);
	const severalIds = [...ids.values()].filter((s) => s.size > 1).length;
	const strangers = [...ids.keys()].filter((at) => !jobIds.has(at.split(" ")[1] ?? "")).length;
	const acknowledged = deliveries.filter((d) => d.answered === 204);
	const sameIdAgain = acknowledged.length - new Set(acknowledged.map((d) => d.webhookId)).size;
	const statusCounts = Object.fromEntries(
		[...new Set(jobs.map((j) => j.status))].map((s) => [s, jobs.filter((j) => j.status === s).length]),
	);

	const checks: [string, boolean, string][] = [
		[
			"0 jobs lost",
			lost.length === 0 && unsendable.length === 0,
			`${lost.length} keys without a job, ${unsendable.length} uploads refused after the restart`,
		],
		[
			"100 % terminal",
			notTerminal.length === 0 && jobs.length > 0,
			`${jobs.length - notTerminal.length}/${jobs.length} (${JSON.stringify(statusCounts)})`,
		],
		["every delivery verified", unverified.length === 0, `${unverified.length} not verified`],
		["a webhook for every job and endpoint", missingHooks.length === 0, `${missingHooks.length} missing`],
		[
			"exactly one webhook id per job and endpoint",
			severalIds === 0 && strangers === 0,
			`${severalIds} with several ids, ${strangers} for unknown jobs`,
		],
	];
	console.log("");
	console.log(
		`soak ${new Date().toISOString().slice(0, 10)}: ${options.images} images, ${endpoints} endpoint(s) per job`,
	);
	console.log(
		`  SIGKILL after ${killAfter} uploads; npm run dev answered again ${(restartedAfterMs / 1000).toFixed(1)} s later`,
	);
	console.log(
		`  uploads ${uploadSeconds.toFixed(1)} s; everything settled ${settledSeconds.toFixed(1)} s after the start`,
	);
	console.log(
		`  webhook requests ${deliveries.length}: ${acknowledged.length} acknowledged, ${deliveries.filter((d) => d.answered === 500).length} answered 500 (retried), ` +
			`${sameIdAgain} acknowledged again with an id already acknowledged (at-least-once)`,
	);
	for (const [name, ok, detail] of checks) console.log(`  ${ok ? "ok  " : "FAIL"} ${name}: ${detail}`);
	await receiver.close();
	return checks.every(([, ok]) => ok);
}

main().then(
	(ok) => {
		cleanUp();
		process.exit(ok ? 0 : 1);
	},
	(err: unknown) => {
		console.error(`npm run soak: ${err instanceof Error ? err.message : String(err)}`);
		cleanUp();
		process.exit(1);
	},
);
