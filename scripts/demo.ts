/**
 * `npm run demo`: the service at work. Against the running `npm run dev` (or one it starts), it
 * subscribes a local webhook receiver, uploads the images in samples/, shows the jobs' progress,
 * prints each caption, and shows the signed webhooks arriving and verified.
 *
 *   npm run demo                      http://localhost:8787
 *   API_URL=http://localhost:8790 npm run demo
 *
 * It calls the API through the typed client (client/), as the `r2c` command does.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { defaultApiUrl } from "../cli/context.ts";
import { createR2cClient, isTerminal, type Job, ok, uploadImage } from "../client/index.ts";
import { scriptArgs } from "./lib/args.ts";
import { useOrStartDevServer } from "./lib/dev-server.ts";
import { adminToken, readDevVars } from "./lib/dev-vars.ts";
import { type Delivery, startReceiver } from "./lib/webhook-receiver.ts";
import { root } from "./lib/wrangler.ts";

// The API's URL is the environment's, not an option: an option is a mistake, said in one line.
const toApiUrl = "the API's URL comes from API_URL: API_URL=http://localhost:8790 npm run demo";
scriptArgs("npm run demo", { options: {} }, { "--port": toApiUrl, "--api-url": toApiUrl, "--url": toApiUrl });

// API_URL or R2C_API_URL, read as `r2c` reads them.
const base = defaultApiUrl().replace(/\/$/, "");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IMAGE_EXTENSIONS = new Set([".jpg", ".png", ".webp"]);

function progressLine(jobs: Job[]): string {
	const count = (s: Job["status"]) => jobs.filter((j) => j.status === s).length;
	const done = count("succeeded") + count("failed") + count("cancelled");
	const bar = jobs
		.map((j) => ({ queued: "·", processing: "~", succeeded: "#", failed: "x", cancelled: "-" })[j.status])
		.join("");
	return `  [${bar}] ${done}/${jobs.length} done · ${count("processing")} processing · ${count("queued")} queued`;
}

async function main() {
	const server = await useOrStartDevServer(base);
	const api = createR2cClient({ baseUrl: base, token: adminToken() });
	const run = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
	const prefix = `demo/${run}/`;
	const deliveries: Delivery[] = [];
	const secrets = new Map<string, string>();
	const receiver = await startReceiver(secrets, (d) => deliveries.push(d));

	try {
		console.log(`r2-captions demo against ${base}\n`);
		const subscription = await ok(
			api.POST("/v1/webhooks", {
				body: { url: receiver.url("/subscription"), events: ["job.succeeded", "job.failed"], prefix },
			}),
		);
		secrets.set("/subscription", subscription.secret);
		console.log(`Webhook subscription ${subscription.id} → ${receiver.url("/subscription")} (jobs under ${prefix})`);
		// The first image also names a per-object callback URL, signed with the service-wide WEBHOOK_SECRET.
		const callbackSecret = readDevVars().WEBHOOK_SECRET;
		if (callbackSecret) secrets.set("/callback", callbackSecret);

		const files = readdirSync(path.join(root, "samples"))
			.filter((f) => IMAGE_EXTENSIONS.has(path.extname(f)))
			.sort();
		console.log(`\nUploading ${files.length} sample images:`);
		const jobs: Job[] = [];
		for (const [i, file] of files.entries()) {
			const bytes = readFileSync(path.join(root, "samples", file));
			const own = i === 0 && callbackSecret !== undefined;
			const options = own
				? { callbackUrl: receiver.url("/callback"), prompt: "What can you see in this picture?" }
				: {};
			const job = await uploadImage(api, `${prefix}${file}`, new Blob([bytes]), options);
			jobs.push(job);
			const extra = own ? "  (own prompt + callback URL)" : "";
			console.log(
				`  ${file.padEnd(26)} ${(bytes.length / 1024).toFixed(1).padStart(5)} KiB → ${job.id} ${job.status}${extra}`,
			);
		}

		console.log("\nCaptioning:");
		const interactive = process.stdout.isTTY;
		let last = "";
		const deadline = Date.now() + 120_000;
		while (jobs.some((j) => !isTerminal(j.status)) && Date.now() < deadline) {
			await sleep(300);
			for (const [i, job] of jobs.entries()) {
				if (!isTerminal(job.status)) jobs[i] = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
			}
			const line = progressLine(jobs);
			if (interactive) process.stdout.write(`\r${line}`);
			else if (line !== last) console.log(line);
			last = line;
		}
		if (interactive) process.stdout.write("\n");

		console.log("\nCaptions:");
		for (const job of jobs) {
			const name = job.key.slice(prefix.length);
			if (job.status === "succeeded") {
				console.log(`  ${name}  (${job.model}, ${job.metrics.inference_ms} ms inference)\n    ${job.caption}`);
			} else {
				console.log(`  ${name}  ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ""}`);
			}
		}

		const expected = jobs.length + (secrets.has("/callback") ? 1 : 0);
		const webhookDeadline = Date.now() + 30_000;
		while (deliveries.length < expected && Date.now() < webhookDeadline) await sleep(200);
		console.log(`\nWebhooks received on 127.0.0.1 (${deliveries.length} of ${expected} expected):`);
		for (const d of deliveries) {
			const verdict = d.verified ? "signature verified (standardwebhooks)" : `REJECTED: ${d.error}`;
			console.log(
				`  ${d.verified ? "✓" : "✗"} ${d.type.padEnd(13)} ${d.key.slice(prefix.length).padEnd(26)} via ${d.target.padEnd(12)} ${d.webhookId}  ${verdict}`,
			);
		}

		await ok(api.DELETE("/v1/webhooks/{id}", { params: { path: { id: subscription.id } } }));
		const success =
			jobs.every((j) => j.status === "succeeded") &&
			deliveries.length >= expected &&
			deliveries.every((d) => d.verified);
		console.log(success ? "\nDemo complete." : "\nDemo finished with problems (see above).");
		return success ? 0 : 1;
	} finally {
		await receiver.close();
		if (server.started) {
			console.log("Stopping the dev server the demo started…");
			await server.stop();
		}
	}
}

main().then(
	(code) => process.exit(code),
	(err: unknown) => {
		console.error(`npm run demo: ${err instanceof Error ? err.message : String(err)}`);
		process.exit(1);
	},
);
