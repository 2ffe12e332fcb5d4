/**
 * GET /v1/events against `npm run dev`: a standard EventSource client (the `eventsource` package,
 * which behaves as a browser's does) opened with a stream token follows jobs across a restart of
 * the whole stack (Ctrl-C, then `npm run dev` again on the same state and port) and gets every job's
 * event exactly once: what happened while it was away is replayed from its Last-Event-ID. Then the
 * CLI: `r2c events` prints the stream as JSON lines, and `r2c upload --wait` follows it (the server
 * logs no job polling).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { EventSource } from "eventsource";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type DevStack, spawnDevStack, until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { r2c, startR2c } from "./support/cli.ts";
import { sharedDevStack } from "./support/shared-stack.ts";

const IMAGES = 12;
/** Model calls take a while, so that jobs are still in flight when the stack stops. */
const ARGS = ["--var", "EMULATOR_LATENCY_MS=300"];

const JobEvent = z.object({
	type: z.enum(["job.succeeded", "job.failed"]),
	data: z.object({ id: z.string(), key: z.string(), status: z.string() }),
});
const Job = z.object({ id: z.string(), key: z.string(), status: z.string() });
const JobPage = z.object({ data: z.array(Job), next_cursor: z.string().nullable() });

const stacks: DevStack[] = [];
const work = mkdtempSync(path.join(tmpdir(), "r2c-events-test-"));
afterAll(() => {
	for (const stack of stacks.reverse()) stack.dispose();
	rmSync(work, { recursive: true, force: true });
});

const bytes = readFileSync(path.join(root, "samples/shapes-on-white.png"));

async function upload(stack: DevStack, key: string): Promise<void> {
	const res = await fetch(`${stack.url}/v1/images/${encodeURIComponent(key)}`, {
		method: "PUT",
		headers: { Authorization: `Bearer ${stack.token}`, "Content-Type": "image/png" },
		body: bytes,
	});
	expect(res.status).toBe(202);
}

async function jobsUnder(stack: DevStack, prefix: string) {
	const res = await fetch(`${stack.url}/v1/jobs?${new URLSearchParams({ prefix, limit: "100" })}`, {
		headers: { Authorization: `Bearer ${stack.token}` },
	});
	return JobPage.parse(await res.json()).data;
}

interface Received {
	id: string;
	jobId: string;
}

describe("GET /v1/events with npm run dev", () => {
	it("an EventSource gets every job's event exactly once across a restart, resuming from Last-Event-ID", async () => {
		const first = await spawnDevStack("events", { args: ARGS });
		stacks.push(first);
		await first.ready(120_000);
		const prefix = `events-${Date.now().toString(36)}/`;
		const tokenRes = await fetch(`${first.url}/v1/events/tokens`, {
			method: "POST",
			headers: { Authorization: `Bearer ${first.token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ ttl_seconds: 600 }),
		});
		expect(tokenRes.status).toBe(201);
		const { token } = z.object({ token: z.string() }).parse(await tokenRes.json());

		const received: Received[] = [];
		let source: EventSource | null = null;
		let reopened = 0;
		const onJob = (event: MessageEvent) => {
			received.push({ id: event.lastEventId, jobId: JobEvent.parse(JSON.parse(event.data)).data.id });
		};
		const open = (url: string) => {
			const es = new EventSource(url);
			es.addEventListener("job.succeeded", onJob);
			es.addEventListener("job.failed", onJob);
			return es;
		};
		const base = `${first.url}/v1/events?token=${token}&prefix=${encodeURIComponent(prefix)}`;
		source = open(base);
		await until("the stream to open", 30_000, async () => (source?.readyState === EventSource.OPEN ? true : undefined));

		const keys = Array.from({ length: IMAGES }, (_, i) => `${prefix}${String(i).padStart(2, "0")}.png`);
		for (const key of keys.slice(0, 8)) await upload(first, key);
		await until("a first event", 60_000, async () => (received.length >= 1 ? true : undefined));

		// Ctrl-C while jobs are in flight, and npm run dev again on the same state and port.
		await first.stop();
		const atStop = received.length;
		const second = await spawnDevStack("events", { persistTo: first.persistTo, port: first.port, args: ARGS });
		stacks.push(second);
		await second.ready(120_000);
		// The EventSource reconnects by itself with Last-Event-ID; one that gave up (a refused
		// connection while the stack was down counts as an error) is opened again with ?after=.
		if (source.readyState === EventSource.CLOSED) {
			const last = received.at(-1)?.id;
			source = open(last ? `${base}&after=${last}` : base);
			reopened++;
		}
		for (const key of keys.slice(8)) await upload(second, key);

		const jobs = await until(
			"every job's event",
			120_000,
			async () => {
				const listed = await jobsUnder(second, prefix);
				const terminal = listed.filter((j) => j.status === "succeeded" || j.status === "failed");
				return terminal.length === IMAGES && received.length >= IMAGES ? listed : undefined;
			},
			() => `received ${received.length}: ${JSON.stringify(received.slice(-3))}\n${second.output().slice(-2000)}`,
		);
		// Nothing more comes: no duplicate arrives late.
		await new Promise((resolve) => setTimeout(resolve, 1500));
		source.close();

		expect(received.map((r) => r.jobId).sort()).toEqual(jobs.map((j) => j.id).sort());
		expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
		const ids = received.map((r) => r.id);
		expect([...ids].sort()).toEqual(ids);
		// Some events came after the restart (the test did cross it) …
		expect(received.length).toBeGreaterThan(atStop);
		expect(reopened).toBeLessThanOrEqual(1);
	}, 400_000);
});

describe("r2c and the stream", () => {
	it("r2c events prints the stream as JSON lines; r2c upload --wait follows it without polling jobs", async () => {
		// The node project's shared stack: other files' jobs run on it too, so everything below is
		// this test's prefix and jobs only.
		const stack = await sharedDevStack();
		const env = { R2C_API_URL: stack.url, R2C_TOKEN: stack.token };
		const prefix = `cli-events-${crypto.randomUUID()}/`;
		// From the start of the stack's events: nothing of this test's can pass before it connects.
		const printing = startR2c(["events", "--prefix", prefix, "--after", "0"], env);

		const folder = path.join(work, "album");
		mkdirSync(folder, { recursive: true });
		writeFileSync(path.join(folder, "a.png"), bytes);
		writeFileSync(path.join(folder, "b.jpg"), readFileSync(path.join(root, "samples/striped-sailboat.jpg")));
		const before = stack.output().length;
		const waited = await r2c(["upload", folder, "--prefix", prefix, "--wait", "--json"], env);
		expect(waited.code, waited.stderr).toBe(0);
		const result = z
			.object({ files: z.array(z.object({ key: z.string(), job: Job })) })
			.parse(JSON.parse(waited.stdout));
		expect(result.files.map((f) => f.job.status)).toEqual(["succeeded", "succeeded"]);
		// Followed on the stream: no GET of its jobs while it waited (polling reads each job again and again).
		const during = stack.output().slice(before);
		for (const { job } of result.files) expect(during).not.toContain(`GET /v1/jobs/${job.id}`);
		const uploaded = [...during.matchAll(/PUT \/v1\/images\/(\S+) 202/g)].map((m) => decodeURIComponent(m[1] ?? ""));
		expect(uploaded).toEqual(expect.arrayContaining(result.files.map((f) => f.key)));

		await until("r2c events to print both", 30_000, async () =>
			printing.stdout().trim().split("\n").filter(Boolean).length >= 2 ? true : undefined,
		);
		printing.child.kill("SIGINT");
		await printing.exited;
		const lines = printing
			.stdout()
			.trim()
			.split("\n")
			.map((line) => z.object({ id: z.string(), type: z.string(), data: JobEvent }).parse(JSON.parse(line)));
		expect(lines.map((l) => l.data.data.id).sort()).toEqual(result.files.map((f) => f.job.id).sort());
		expect(lines.every((l) => l.type === l.data.type)).toBe(true);
	}, 300_000);
});
