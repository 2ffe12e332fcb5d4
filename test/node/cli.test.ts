/**
 * The `r2c` command against the local stack (the node project's shared `npm run dev`): a folder
 * captioned with `--wait` and its results file read back, a second run that resumes, a failed
 * job's exit code, `--json` output, `webhooks listen` with verified and forwarded events, and the
 * errors a user meets (401, 404 for a job and a batch), and `batch create|list|cancel` with
 * `export` (CSV and Hugging Face metadata.jsonl) over a prefix.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	type Batch,
	type BatchList,
	createR2cClient,
	type Job,
	listAllJobs,
	type R2cClient,
	uploadImage,
} from "../../client/index.ts";
import { until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { r2c, startR2c } from "./support/cli.ts";
import { type SharedStack, sharedDevStack } from "./support/shared-stack.ts";

let stack: SharedStack;
let api: R2cClient;
const work = mkdtempSync(path.join(tmpdir(), "r2c-cli-test-"));
const sample = (name: string) => path.join(root, "samples", name);
/** Every key of this file is under it: other files' jobs share the stack. */
const P = `cli-${crypto.randomUUID()}/`;

beforeAll(async () => {
	stack = await sharedDevStack();
	api = createR2cClient({ baseUrl: stack.url, token: stack.token });
}, 150_000);

afterAll(async () => {
	rmSync(work, { recursive: true, force: true });
	await stack?.release();
});

const env = () => ({ R2C_API_URL: stack.url, R2C_TOKEN: stack.token });

/** The keys of this file's uploads the server logged (wrangler prints every request). */
const uploadsLogged = () =>
	[...stack.output().matchAll(/PUT \/v1\/images\/(\S+) 202/g)]
		.map((m) => decodeURIComponent(m[1] as string))
		.filter((key) => key.startsWith(P));

describe("r2c upload", () => {
	const album = path.join(work, "album");

	it("captions a folder with --wait, skips the non-image with its reason, and writes results.jsonl", async () => {
		mkdirSync(path.join(album, "sub"), { recursive: true });
		copyFileSync(sample("shapes-on-white.png"), path.join(album, "shapes-on-white.png"));
		copyFileSync(sample("striped-sailboat.jpg"), path.join(album, "striped-sailboat.jpg"));
		copyFileSync(sample("night-sky.webp"), path.join(album, "sub", "night-sky.webp"));
		// Named like an image, but its bytes are text: sniffed, not trusted by name.
		writeFileSync(path.join(album, "notes.jpg"), "shopping list: film, batteries\n");
		const out = path.join(work, "results.jsonl");

		const run = await r2c(["upload", album, "--prefix", `${P}album/`, "--wait", "--out", out], env());

		expect(run.code, run.stderr).toBe(0);
		expect(run.stdout).toMatch(/skipped\s+\S*notes\.jpg\s+not an image/);
		expect(run.stdout).toContain("3 uploaded, 1 skipped, 3 captioned, 0 failed");
		const results = readFileSync(out, "utf8")
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line) as Job);
		expect(results.map((j) => [j.key, j.status])).toEqual([
			[`${P}album/shapes-on-white.png`, "succeeded"],
			[`${P}album/striped-sailboat.jpg`, "succeeded"],
			[`${P}album/sub/night-sky.webp`, "succeeded"],
		]);
		for (const job of results) expect(job.caption).toMatch(/emulated/i);
		expect(results[2]?.caption).toContain("WEBP");
		// The API holds the same jobs, and none for the text file.
		const stored = await listAllJobs(api, { prefix: `${P}album/` });
		expect(stored.map((j) => j.id).sort()).toEqual(results.map((j) => j.id).sort());
	});

	it("resumes: a second run uploads only the file whose bytes changed and reuses the other jobs", async () => {
		const before = uploadsLogged();
		expect(before.filter((k) => k.startsWith(`${P}album/`))).toHaveLength(3);
		copyFileSync(sample("sunset-over-hills.jpg"), path.join(album, "shapes-on-white.png"));

		const run = await r2c(["upload", album, "--prefix", `${P}album/`, "--json"], env());

		expect(run.code, run.stderr).toBe(0);
		const result = JSON.parse(run.stdout) as {
			counts: Record<string, number>;
			files: { key: string; action: string; job?: Job }[];
		};
		expect(result.counts).toMatchObject({ files: 4, images: 3, skipped: 1, uploaded: 1, resumed: 2 });
		expect(Object.fromEntries(result.files.map((f) => [f.key, f.action]))).toEqual({
			[`${P}album/notes.jpg`]: "skipped",
			[`${P}album/shapes-on-white.png`]: "uploaded",
			[`${P}album/striped-sailboat.jpg`]: "resumed",
			[`${P}album/sub/night-sky.webp`]: "resumed",
		});
		// The server saw one more upload, the changed file's, and nothing else.
		await until("the upload in the server log", 5_000, async () =>
			uploadsLogged().length > before.length ? true : undefined,
		);
		expect(uploadsLogged().slice(before.length)).toEqual([`${P}album/shapes-on-white.png`]);
	});

	it("exits 1 when a job fails (a truncated JPEG: invalid_image) and writes it to results.csv", async () => {
		const dir = path.join(work, "mixed");
		mkdirSync(dir);
		copyFileSync(sample("shapes-on-white.png"), path.join(dir, "good.png"));
		const jpeg = readFileSync(sample("sunset-over-hills.jpg"));
		writeFileSync(path.join(dir, "cut-off.jpg"), jpeg.subarray(0, jpeg.length / 2));
		const out = path.join(work, "results.csv");

		// A question with a comma and quotes: moondream answers it (query task) and the emulated answer
		// quotes it back, so the caption column needs CSV quoting.
		const question = 'What is "in" it, briefly?';
		const run = await r2c(
			["upload", dir, "--prefix", `${P}mixed/`, "--prompt", question, "--wait", "--out", out],
			env(),
		);

		expect(run.code, run.stderr).toBe(1);
		expect(run.stdout).toMatch(new RegExp(`failed\\s+${P}mixed/cut-off\\.jpg\\s+invalid_image: `));
		const rows = parse(readFileSync(out), { columns: true }) as Record<string, string>[];
		expect(rows.map((r) => [r.key, r.status, r.error_code])).toEqual([
			[`${P}mixed/cut-off.jpg`, "failed", "invalid_image"],
			[`${P}mixed/good.png`, "succeeded", ""],
		]);
		// Captions hold commas and quotes: the CSV quoting survives the round trip.
		expect(rows[1]?.caption).toBe(
			`Emulated caption (@cf/moondream/moondream3.1-9B-A2B): a PNG image, 640×480 pixels. Prompt: "${question}".`,
		);
	});
});

describe("r2c upload with an output", () => {
	it("--output tags --language de --write-back sidecar: German tags, a sidecar, and its echo makes no job", async () => {
		const dir = path.join(work, "tagged");
		mkdirSync(dir);
		copyFileSync(sample("striped-sailboat.jpg"), path.join(dir, "boat.jpg"));
		const args = ["upload", dir, "--prefix", `${P}tagged/`, "--output", "tags", "--language", "de"];
		const run = await r2c([...args, "--write-back", "sidecar", "--wait", "--json"], env());

		expect(run.code, run.stderr).toBe(0);
		const [file] = (JSON.parse(run.stdout) as { files: { job: Job }[] }).files;
		expect(file?.job).toMatchObject({ status: "succeeded", output: "tags", language: "de" });
		expect(file?.job.model).toBe("@cf/mistralai/mistral-small-3.1-24b-instruct");
		expect(Array.isArray(file?.job.result)).toBe(true);
		const id = file?.job.id as string;
		// The write-back ends after the job does; its echo goes through the real queue.
		const done = await until("the write-back", 20_000, async () => {
			const job = await api.GET("/v1/jobs/{id}", { params: { path: { id } } });
			return job.data?.write_back?.status === "written" ? job.data : undefined;
		});
		expect(done.write_back).toEqual({ target: "sidecar", status: "written", error: null });
		const echoes = await until("the echo counted", 20_000, async () => {
			const stats = await api.GET("/v1/stats");
			const n = stats.data?.counters.write_back_echoes ?? 0;
			return n >= 1 ? n : undefined;
		});
		expect(echoes).toBeGreaterThanOrEqual(1);
		expect((await listAllJobs(api, { prefix: `${P}tagged/` })).map((j) => j.key)).toEqual([`${P}tagged/boat.jpg`]);
	});
});

describe("r2c jobs", () => {
	it("--json prints the API's JSON: a page of jobs and one job", async () => {
		const list = await r2c(["jobs", "list", "--prefix", `${P}album/`, "--limit", "2", "--json"], env());
		expect(list.code, list.stderr).toBe(0);
		const page = JSON.parse(list.stdout) as { data: Job[]; next_cursor: string | null };
		expect(page.data).toHaveLength(2);
		expect(page.next_cursor).toEqual(expect.any(String));

		const newest = page.data[0] as Job;
		const get = await r2c(["jobs", "get", newest.id, "--json"], env());
		expect(get.code, get.stderr).toBe(0);
		expect(JSON.parse(get.stdout)).toEqual(newest);

		const text = await r2c(["jobs", "list", "--status", "failed", "--prefix", P], env());
		expect(text.stdout).toMatch(new RegExp(`job_\\w+\\s+failed\\s+${P}mixed/cut-off\\.jpg\\s+invalid_image`));
	});
});

describe("r2c webhooks listen", () => {
	it("prints each verified event, forwards it, refuses a forged one, and unsubscribes on Ctrl-C", async () => {
		const forwarded: { headers: IncomingHttpHeaders; body: string }[] = [];
		const target = createServer((req, res) => {
			let body = "";
			req.on("data", (c: Buffer) => {
				body += c;
			});
			req.on("end", () => {
				forwarded.push({ headers: req.headers, body });
				res.writeHead(200).end();
			});
		});
		await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
		const forwardTo = `http://127.0.0.1:${(target.address() as AddressInfo).port}/hooks`;
		const listener = startR2c(
			["webhooks", "listen", "--prefix", `${P}hooks/`, "--forward-to", forwardTo, "--json"],
			env(),
		);
		try {
			const [, subscriptionId, receiver] = await until(
				"the listener to subscribe",
				20_000,
				async () =>
					/Ready: subscription (wh_\w+) .*? to (http:\/\/127\.0\.0\.1:\d+\/)/.exec(listener.stderr()) ?? undefined,
				listener.stderr,
			);

			const forged = await fetch(receiver as string, {
				method: "POST",
				body: JSON.stringify({ type: "job.succeeded", timestamp: new Date().toISOString(), data: {} }),
				headers: {
					"webhook-id": "msg_forged",
					"webhook-timestamp": String(Math.floor(Date.now() / 1000)),
					"webhook-signature": "v1,bm90IGEgc2lnbmF0dXJl",
				},
			});
			expect(forged.status).toBe(400);

			const job = await uploadImage(api, `${P}hooks/cat.png`, new Blob([readFileSync(sample("shapes-on-white.png"))]));
			const line = await until(
				"the job's event",
				60_000,
				async () =>
					listener
						.stdout()
						.split("\n")
						.find((l) => l.includes(job.id)),
				() => listener.stdout() + listener.stderr(),
			);
			const printed = JSON.parse(line) as { webhook_id: string; verified: boolean; forwarded: number; event: unknown };
			expect(printed).toMatchObject({
				verified: true,
				forwarded: 200,
				event: { type: "job.succeeded", data: { id: job.id, key: `${P}hooks/cat.png`, status: "succeeded" } },
			});
			expect(listener.stdout()).not.toContain("msg_forged");
			expect(listener.stderr()).toContain("failed verification");
			// Forwarded as it came: the app verifies it with the secret `listen` printed for it.
			expect(forwarded).toHaveLength(1);
			const [delivery] = forwarded as [(typeof forwarded)[number]];
			expect(delivery.headers["webhook-id"]).toBe(printed.webhook_id);
			const secret = /Signing secret for \S+: (whsec_\S+)/.exec(listener.stderr())?.[1] ?? "";
			const headers = Object.fromEntries(
				["webhook-id", "webhook-timestamp", "webhook-signature"].map((h) => [h, String(delivery.headers[h])]),
			);
			expect(new Webhook(secret).verify(delivery.body, headers)).toEqual(printed.event);

			listener.child.kill("SIGINT");
			expect(await listener.exited).toBe(0);
			expect(listener.stderr()).toContain(`removed subscription ${subscriptionId}`);
			const gone = await api.GET("/v1/webhooks/{id}", { params: { path: { id: subscriptionId as string } } });
			expect(gone.response.status).toBe(404);
		} finally {
			listener.child.kill("SIGKILL");
			target.close();
		}
	}, 90_000);
});

describe("r2c batch and export", () => {
	it("captions a prefix with --wait (one object skipped as already captioned), lists it, exports CSV and hf, and refuses to cancel it (409)", async () => {
		// Two objects with the default prompt, one uploaded with the batch's prompt: once all three are
		// captioned, a batch with that prompt re-captions the two and skips the third.
		const prompt = "Alt text for a screen reader";
		const uploads = [
			uploadImage(api, `${P}batchset/a.png`, new Blob([readFileSync(sample("shapes-on-white.png"))])),
			uploadImage(api, `${P}batchset/b.jpg`, new Blob([readFileSync(sample("striped-sailboat.jpg"))])),
			uploadImage(api, `${P}batchset/sub/c.webp`, new Blob([readFileSync(sample("night-sky.webp"))]), { prompt }),
		];
		const ids = new Set((await Promise.all(uploads)).map((j) => j.id));
		await until("the uploads' jobs to succeed", 60_000, async () => {
			const jobs = (await listAllJobs(api, { prefix: `${P}batchset/` })).filter((j) => ids.has(j.id));
			return jobs.length === 3 && jobs.every((j) => j.status === "succeeded") ? true : undefined;
		});

		const create = await r2c(
			["batch", "create", "--prefix", `${P}batchset/`, "--prompt", prompt, "--wait", "--json"],
			env(),
		);
		expect(create.code, create.stderr).toBe(0);
		const batch = JSON.parse(create.stdout) as Batch;
		expect(batch).toMatchObject({
			id: expect.stringMatching(/^bat_/),
			status: "completed",
			prefix: `${P}batchset/`,
			prompt,
		});
		expect(batch.counts).toEqual({
			total: 3,
			queued: 0,
			processing: 0,
			succeeded: 2,
			failed: 0,
			cancelled: 0,
			skipped: 1,
			missing: 0,
		});
		// Without --json (and no terminal): progress lines on stderr, the last one the batch's end.
		const plain = await r2c(["batch", "create", "--prefix", `${P}batchset/`, "--prompt", prompt, "--wait"], env());
		expect(plain.code, plain.stderr).toBe(0);
		const progress = plain.stderr.split("\n").filter((l) => l.startsWith("progress: "));
		expect(progress.at(-1)).toMatch(/^progress: 3\/3 /);

		const list = await r2c(["batch", "list", "--json"], env());
		expect(list.code, list.stderr).toBe(0);
		expect((JSON.parse(list.stdout) as BatchList).data.find((b) => b.id === batch.id)).toEqual(batch);

		const csv = path.join(work, "batch.csv");
		const exportCsv = await r2c(["export", batch.id, "--format", "csv", "--out", csv], env());
		expect(exportCsv.code, exportCsv.stderr).toBe(0);
		const rows = parse(readFileSync(csv), { columns: true }) as Record<string, string>[];
		// The header as docs/batches.md gives it (written out here, not read from the product).
		expect(readFileSync(csv, "utf8").split("\r\n")[0]).toBe(
			"key,status,caption,error_code,error_message,model,prompt,completed_at",
		);
		// The skipped object appears as its earlier job, which ran with the same prompt.
		expect(rows.map((r) => [r.key, r.status, r.error_code, r.prompt])).toEqual([
			[`${P}batchset/a.png`, "succeeded", "", prompt],
			[`${P}batchset/b.jpg`, "succeeded", "", prompt],
			[`${P}batchset/sub/c.webp`, "succeeded", "", prompt],
		]);
		for (const row of rows) {
			expect(row.caption).toMatch(/^Emulated caption/);
			// Model ids begin with @, which a spreadsheet reads as a formula: the cell opens as text.
			expect(row.model).toMatch(/^'@cf\//);
			expect(Number.isNaN(Date.parse(row.completed_at ?? ""))).toBe(false);
		}
		expect(rows[2]?.caption).toContain("WEBP");

		const hf = path.join(work, "metadata.jsonl");
		const exportHf = await r2c(["export", batch.id, "--format", "hf", "--out", hf], env());
		expect(exportHf.code, exportHf.stderr).toBe(0);
		const lines = readFileSync(hf, "utf8")
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line) as { file_name: string; text: string });
		expect(lines.map((l) => l.file_name)).toEqual(["a.png", "b.jpg", "sub/c.webp"]);
		expect(lines.map((l) => l.text)).toEqual(rows.map((r) => r.caption));

		const cancel = await r2c(["batch", "cancel", batch.id], env());
		expect(cancel.code).toBe(1);
		expect(cancel.stderr).toBe(`r2c: the API answered 409 batch_completed: Batch ${batch.id} has completed\n`);
		const after = await r2c(["batch", "get", batch.id, "--json"], env());
		expect(JSON.parse(after.stdout)).toMatchObject({ id: batch.id, status: "completed" });
	}, 120_000);
});

describe("r2c captions and planned batches", () => {
	it("sets and gets a caption by hand, exports the prefix, plans a batch with --dry-run and starts it", async () => {
		const uploads = [
			uploadImage(api, `${P}capset/a.png`, new Blob([readFileSync(sample("shapes-on-white.png"))])),
			uploadImage(api, `${P}capset/b.jpg`, new Blob([readFileSync(sample("striped-sailboat.jpg"))])),
		];
		const ids = new Set((await Promise.all(uploads)).map((j) => j.id));
		await until("the uploads' jobs to succeed", 60_000, async () => {
			const jobs = (await listAllJobs(api, { prefix: `${P}capset/` })).filter((j) => ids.has(j.id));
			return jobs.length === 2 && jobs.every((j) => j.status === "succeeded") ? true : undefined;
		});

		const set = await r2c(["captions", "set", `${P}capset/a.png`, "Shapes on white, by hand.", "--json"], env());
		expect(set.code, set.stderr).toBe(0);
		expect(JSON.parse(set.stdout)).toMatchObject({ key: `${P}capset/a.png`, source: "human", versions: 2 });
		const get = await r2c(["captions", "get", `${P}capset/a.png`, "--json"], env());
		expect(get.code, get.stderr).toBe(0);
		const caption = JSON.parse(get.stdout) as { text: string; history: { version: number; source: string }[] };
		expect(caption.text).toBe("Shapes on white, by hand.");
		expect(caption.history.map((v) => [v.version, v.source])).toEqual([
			[2, "human"],
			[1, "ai"],
		]);

		const out = path.join(work, "captions.jsonl");
		const exported = await r2c(
			["captions", "export", "--prefix", `${P}capset/`, "--format", "jsonl", "--out", out],
			env(),
		);
		expect(exported.code, exported.stderr).toBe(0);
		const lines = readFileSync(out, "utf8")
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line) as { key: string; source: string });
		expect(lines.map((l) => [l.key, l.source])).toEqual([
			[`${P}capset/a.png`, "human"],
			[`${P}capset/b.jpg`, "ai"],
		]);

		// A plan over both: each already has a succeeded job with the default prompt, so both are skipped.
		const plan = await r2c(["batch", "create", "--prefix", `${P}capset/`, "--dry-run", "--wait", "--json"], env());
		expect(plan.code, plan.stderr).toBe(0);
		const planned = JSON.parse(plan.stdout) as Batch;
		expect(planned.status).toBe("planned");
		expect(planned.estimate).toMatchObject({ model_calls: 0 });
		expect(planned.counts).toMatchObject({ total: 2, skipped: 2 });
		const start = await r2c(["batch", "start", planned.id, "--wait", "--json"], env());
		expect(start.code, start.stderr).toBe(0);
		expect(JSON.parse(start.stdout)).toMatchObject({
			id: planned.id,
			status: "completed",
			counts: { total: 2, skipped: 2 },
		});
	}, 120_000);
});

describe("r2c errors", () => {
	it("says what is wrong for a refused token (401), a missing job (404) and a missing batch (404)", async () => {
		const refused = await r2c(["jobs", "list"], { ...env(), R2C_TOKEN: "not-a-token" });
		expect(refused.code).toBe(1);
		expect(refused.stderr).toMatch(/^r2c: the API refused the token \(401 unauthorized: .*\)\. Set R2C_TOKEN/);

		const missing = await r2c(["jobs", "get", "job_does_not_exist"], env());
		expect(missing.code).toBe(1);
		expect(missing.stderr).toMatch(/^r2c: not found \(404 not_found: Job job_does_not_exist not found\)/);

		const noBatch = await r2c(["batch", "get", "bat_nope"], env());
		expect(noBatch.code).toBe(1);
		expect(noBatch.stderr).toMatch(/^r2c: not found \(404 not_found: .*bat_nope/);

		const json = await r2c(["jobs", "get", "job_does_not_exist", "--json"], env());
		expect(json.code).toBe(1);
		expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: "not_found", status: 404 } });
	});
});
