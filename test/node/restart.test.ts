/**
 * `npm run dev` as a user runs it, from a fresh clone's empty state to Ctrl-C, on its own port and a
 * temporary state directory (a developer's running server and local data are left alone):
 *
 * 1. The main job: `npm run dev` migrates the empty state itself (every Worker in one
 *    `wrangler dev`, local D1, R2 and Queues, the model emulator); an upload through the API is
 *    polled until it succeeds; wrong tokens are limited by the client's socket address.
 * 2. Restarts lose nothing (docs/recovery.md): a subscribed webhook receiver, per-object callback
 *    URLs and an open event stream, 200 uploads, the whole dev stack SIGKILLed in the middle (npm,
 *    the launcher, wrangler and workerd), started again on the same local state and port; the client
 *    re-sends the uploads whose requests failed (identical bytes), and nothing else is done. Every
 *    job ends terminal, with exactly one webhook id per job and endpoint, each delivery verified with
 *    `standardwebhooks`; a standard EventSource client (the `eventsource` package, which behaves as a
 *    browser's does) gets every job's event exactly once, in order, resuming from its Last-Event-ID
 *    across the restart (docs/events.md). How long that takes is printed (about 25 s on a quiet
 *    machine); the test waits up to RECOVERY_DEADLINE_MS so that a loaded CI machine, where the stack
 *    shares two cores with the rest of the suite, does not turn a speed figure into a failure.
 * 3. Ctrl-C stops every process of the restarted stack and frees its port.
 *
 * One file, so that the three share the stack's two starts instead of booting a third.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type DevStack, groupAlive, portIsFree, sleep, spawnDevStack, until } from "../../scripts/lib/dev-stack.ts";
import { readDevVars } from "../../scripts/lib/dev-vars.ts";
import { type Delivery, startReceiver } from "../../scripts/lib/webhook-receiver.ts";
import { root } from "../../scripts/lib/wrangler.ts";

const IMAGES = 200;
/** Uploads answered before the kill (the rest fail, or are cut off mid-request). */
const KILL_AFTER = 90;
const UPLOAD_CONCURRENCY = 8;
/** Model calls take a while, so that jobs are queued and processing when the stack dies. */
const ARGS = ["--var", "EMULATOR_LATENCY_MS=150"];

const Job = z.object({ id: z.string(), key: z.string(), status: z.string() });
const JobEvent = z.object({ type: z.enum(["job.succeeded", "job.failed"]), data: z.object({ id: z.string() }) });
const JobPage = z.object({ data: z.array(Job), next_cursor: z.string().nullable() });
const TERMINAL = new Set(["succeeded", "failed"]);
/**
 * A hang guard, not a target: longer than `npm run dev`'s periodic sweep needs to re-send a message
 * lost after the restart (5 minutes stale, looked for every 60 s), so only work the recovery can
 * never finish fails the test. On a CI machine running the whole suite on two cores, the 400
 * deliveries alone have taken more than 4 minutes.
 */
const RECOVERY_DEADLINE_MS = 420_000;

const stacks: DevStack[] = [];
/** Started on an empty state, as on a fresh clone: `npm run dev` applies the migrations itself. */
let first: DevStack;
/** The same state and port after the SIGKILL (set by the restart test). */
let second: DevStack | undefined;
const deliveries: Delivery[] = [];
let closeReceiver: (() => Promise<void>) | undefined;
let source: EventSource | undefined;

beforeAll(async () => {
	// As a developer runs it: watching the sources (the other test stacks run with --no-watch).
	first = await spawnDevStack("restart", { unmigrated: true, args: ARGS, watch: true });
	stacks.push(first);
}, 10_000);

afterAll(async () => {
	source?.close();
	await closeReceiver?.();
	for (const stack of stacks.reverse()) stack.dispose();
});

async function uploadOnce(stack: DevStack, key: string, bytes: Buffer, callbackUrl: string): Promise<boolean> {
	try {
		const res = await fetch(`${stack.url}/v1/images/${encodeURIComponent(key)}`, {
			method: "PUT",
			headers: { Authorization: `Bearer ${stack.token}`, "Content-Type": "image/png", "X-Callback-Url": callbackUrl },
			body: bytes,
			signal: AbortSignal.timeout(30_000),
		});
		await res.arrayBuffer();
		return res.status === 202;
	} catch {
		return false;
	}
}

async function allJobs(stack: DevStack, prefix: string) {
	const jobs: z.infer<typeof Job>[] = [];
	let cursor: string | null = null;
	do {
		const query = new URLSearchParams({ prefix, limit: "100", ...(cursor ? { cursor } : {}) });
		const res = await fetch(`${stack.url}/v1/jobs?${query}`, { headers: { Authorization: `Bearer ${stack.token}` } });
		const page = JobPage.parse(await res.json());
		jobs.push(...page.data);
		cursor = page.next_cursor;
	} while (cursor);
	return jobs;
}

/** For a failure message: the jobs short of a delivery, with what GET /v1/jobs/{id}/deliveries says of them. */
async function missingDeliveries(stack: DevStack, jobs: z.infer<typeof Job>[], arrived: Delivery[]): Promise<string> {
	const seen = new Set(arrived.filter((d) => d.verified).map((d) => `${d.target} ${d.jobId}`));
	const short = jobs.filter((j) => !seen.has(`subscription ${j.id}`) || !seen.has(`callback ${j.id}`));
	const lines = await Promise.all(
		short.slice(0, 10).map(async (j) => {
			const res = await fetch(`${stack.url}/v1/jobs/${j.id}/deliveries`, {
				headers: { Authorization: `Bearer ${stack.token}` },
			});
			return `${j.id} ${j.status}: ${(await res.text()).slice(0, 600)}`;
		}),
	);
	return `${short.length} jobs; the first ten:\n${lines.join("\n")}`;
}

describe("npm run dev", () => {
	it("limits wrong tokens by the client's socket address (wrangler dev sets CF-Connecting-IP), not the admin's requests", async () => {
		await first.ready(120_000);
		const get = (token: string) => fetch(`${first.url}/v1/stats`, { headers: { Authorization: `Bearer ${token}` } });
		expect((await get(first.token)).status).toBe(200);
		// The production limit: AUTH_FAILURE_BURST (10) failures at once, then 429 until a slot frees.
		const statuses: number[] = [];
		for (let i = 0; i < 11; i++) statuses.push((await get(`rck_wrong${crypto.randomUUID()}`)).status);
		expect(statuses).toEqual([...Array(10).fill(401), 429]);
		const refused = await get(`rck_wrong${crypto.randomUUID()}`);
		expect(refused.status).toBe(429);
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
		// Counted against the socket's address, not the shared `unknown` of a request without the header.
		const { error } = (await refused.json()) as { error: { code: string; details: { address: string } } };
		expect(error.code).toBe("too_many_auth_failures");
		expect(["127.0.0.1", "0:0:0:0::/64"]).toContain(error.details.address);
		// Another address (wrangler dev keeps a CF-Connecting-IP the client sent) has its own limit.
		const elsewhere = await fetch(`${first.url}/v1/stats`, {
			headers: { Authorization: "Bearer rck_wrong", "CF-Connecting-IP": "192.0.2.77" },
		});
		expect(elsewhere.status).toBe(401);
		// The admin token authenticated from this address before: not refused with the guesses beside it.
		expect((await get(first.token)).status).toBe(200);
	}, 180_000);

	it("serves /healthz and captions an uploaded image end to end", async () => {
		await first.ready(120_000);
		const api = first.url;
		// The empty state was migrated by the launcher itself, and marked so for its next start.
		expect(first.output()).toContain("D1 migrations applied (local).");

		// The launcher made .dev.vars from the example on a fresh clone; the API reads it too.
		const auth = { Authorization: `Bearer ${first.token}` };
		const key = `first-upload/${crypto.randomUUID()}.png`;
		const upload = await fetch(`${api}/v1/images/${key}`, {
			method: "PUT",
			headers: { ...auth, "Content-Type": "image/png" },
			body: readFileSync(path.join(root, "samples/shapes-on-white.png")),
		});
		const queued = (await upload.json()) as { id: string; status: string; key: string };
		expect(upload.status).toBe(202);
		expect(queued).toMatchObject({ key, status: "queued" });

		const job = await until(
			"the job to finish",
			60_000,
			async () => {
				const res = await fetch(`${api}/v1/jobs/${queued.id}`, { headers: auth });
				const body = (await res.json()) as { status: string; caption: string | null; model: string | null };
				return body.status === "succeeded" || body.status === "failed" ? body : undefined;
			},
			() => first.output().slice(-4000),
		);
		expect(job).toMatchObject({ status: "succeeded", model: "@cf/moondream/moondream3.1-9B-A2B" });
		// The emulator reads the image: its caption names the format and the size.
		expect(job.caption).toMatch(/emulated/i);
		expect(job.caption).toContain("PNG");
		expect(job.caption).toContain("640×480");
		// The status Worker reads the consumer's model-health registry (a Durable Object of another Worker).
		const models = (await (await fetch(`${api}/v1/models`, { headers: auth })).json()) as {
			data: { id: string; status: string; calls_1h: number }[];
		};
		expect(models.data[0]).toMatchObject({ id: job.model, status: "ok", calls_1h: 1 });
	}, 180_000);
});

describe("npm run dev after a SIGKILL", () => {
	it("finishes every job of 200 uploads, with one webhook id per job and endpoint", async () => {
		await first.ready(120_000);

		// The receiver the test runs: a subscription (its own secret) and callback URLs (WEBHOOK_SECRET).
		const secrets = new Map<string, string>();
		const receiver = await startReceiver(secrets, (d) => deliveries.push(d));
		closeReceiver = receiver.close;
		const prefix = `restart-${Date.now().toString(36)}/`;
		const created = await fetch(`${first.url}/v1/webhooks`, {
			method: "POST",
			headers: { Authorization: `Bearer ${first.token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ url: receiver.url("/subscription"), events: ["job.succeeded", "job.failed"], prefix }),
		});
		expect(created.status).toBe(201);
		secrets.set("/subscription", z.object({ secret: z.string() }).parse(await created.json()).secret);
		secrets.set("/callback", readDevVars().WEBHOOK_SECRET ?? "");
		const callbackUrl = receiver.url("/callback");

		// The event stream of the prefix, opened with a stream token as a browser opens it.
		const tokenRes = await fetch(`${first.url}/v1/events/tokens`, {
			method: "POST",
			headers: { Authorization: `Bearer ${first.token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ ttl_seconds: 900 }),
		});
		expect(tokenRes.status).toBe(201);
		const { token: streamToken } = z.object({ token: z.string() }).parse(await tokenRes.json());
		const events: { id: string; jobId: string }[] = [];
		const onJob = (event: MessageEvent) => {
			events.push({ id: event.lastEventId, jobId: JobEvent.parse(JSON.parse(event.data)).data.id });
		};
		const openStream = (url: string) => {
			const es = new EventSource(url);
			es.addEventListener("job.succeeded", onJob);
			es.addEventListener("job.failed", onJob);
			return es;
		};
		const streamUrl = `${first.url}/v1/events?token=${streamToken}&prefix=${encodeURIComponent(prefix)}`;
		source = openStream(streamUrl);
		await until("the event stream to open", 30_000, async () =>
			source?.readyState === EventSource.OPEN ? true : undefined,
		);
		let reopened = 0;

		const bytes = readFileSync(path.join(root, "samples/shapes-on-white.png"));
		const keys = Array.from({ length: IMAGES }, (_, i) => `${prefix}${String(i).padStart(3, "0")}.png`);
		const answered = new Set<string>();
		const failed: string[] = [];
		let next = 0;
		let killed: Promise<void> | undefined;
		await Promise.all(
			Array.from({ length: UPLOAD_CONCURRENCY }, async () => {
				while (next < keys.length) {
					const key = keys[next++] ?? "";
					if (await uploadOnce(first, key, bytes, callbackUrl)) answered.add(key);
					else failed.push(key);
					if (answered.size >= KILL_AFTER && !killed) {
						// The stream has an event before the kill, so that it resumes from a Last-Event-ID.
						if (events.length === 0) {
							await until("a first event on the stream", 60_000, async () => (events.length > 0 ? true : undefined));
						}
						killed ??= first.kill();
					}
				}
			}),
		);
		await killed;
		expect(answered.size).toBeGreaterThanOrEqual(KILL_AFTER);
		expect(failed.length).toBeGreaterThan(0);
		const before = deliveries.length;
		const eventsAtKill = events.length;

		// Started again on the same state and port; the client re-sends what failed, with the same bytes.
		const restartedAt = Date.now();
		const restarted = await spawnDevStack("restart", {
			persistTo: first.persistTo,
			port: first.port,
			args: ARGS,
			watch: true,
		});
		second = restarted;
		stacks.push(restarted);
		await restarted.ready(120_000);
		const readyAfter = Date.now() - restartedAt;
		// The state it migrated before needs no migration step (no migration was added since).
		expect(restarted.output()).toContain("D1 schema is up to date (local: migrated before, no migration added since).");
		// The EventSource reconnects by itself with Last-Event-ID; one that gave up (a refused
		// connection while the stack was down counts as an error) is opened again with ?after=.
		if (source.readyState === EventSource.CLOSED) {
			const last = events.at(-1)?.id;
			source = openStream(last ? `${streamUrl}&after=${last}` : streamUrl);
			reopened++;
		}
		for (const key of failed) {
			expect(await uploadOnce(restarted, key, bytes, callbackUrl), `re-upload of ${key}`).toBe(true);
		}

		const jobs = await until(
			"every job terminal",
			RECOVERY_DEADLINE_MS - readyAfter,
			async () => {
				const listed = await allJobs(restarted, prefix);
				return listed.length >= IMAGES && listed.every((j) => TERMINAL.has(j.status)) ? listed : undefined;
			},
			() => restarted.output().slice(-3000),
		);
		expect(new Set(jobs.map((j) => j.key))).toEqual(new Set(keys));
		// Each job's two webhooks (the subscription and its callback URL).
		const expected = jobs.length * 2;
		const distinct = () => new Set(deliveries.filter((d) => d.verified).map((d) => `${d.target} ${d.jobId}`)).size;
		await until(
			"a webhook per job and endpoint",
			Math.max(1_000, RECOVERY_DEADLINE_MS - (Date.now() - restartedAt)),
			async () => (distinct() >= expected ? true : undefined),
			() => `${distinct()} of ${expected} (job, endpoint) delivered\n${restarted.output().slice(-3000)}`,
		).catch(async (err: Error) => {
			throw new Error(`${err.message}\n${await missingDeliveries(restarted, jobs, deliveries)}`);
		});

		// Every job's event on the stream, once each, in the order the service sent them; some of them
		// after the restart (the stream did cross it).
		await until(
			"every job's event on the stream",
			Math.max(1_000, RECOVERY_DEADLINE_MS - (Date.now() - restartedAt)),
			async () => (events.length >= jobs.length ? true : undefined),
			() => `${events.length} of ${jobs.length} events; the last: ${JSON.stringify(events.slice(-3))}`,
		);
		// Nothing more comes: no duplicate arrives late.
		await new Promise((resolve) => setTimeout(resolve, 1500));
		source.close();
		expect(events.map((e) => e.jobId).sort()).toEqual(jobs.map((j) => j.id).sort());
		const eventIds = events.map((e) => e.id);
		expect(new Set(eventIds).size).toBe(events.length);
		expect([...eventIds].sort()).toEqual(eventIds);
		expect(eventsAtKill).toBeGreaterThan(0);
		expect(events.length).toBeGreaterThan(eventsAtKill);
		expect(reopened).toBeLessThanOrEqual(1);

		expect(deliveries.filter((d) => !d.verified)).toEqual([]);
		const ids = new Map<string, Set<string>>();
		for (const d of deliveries) {
			const at = `${d.target} ${d.jobId}`;
			ids.set(at, (ids.get(at) ?? new Set()).add(d.webhookId));
		}
		const jobIds = new Set(jobs.map((j) => j.id));
		expect([...ids.keys()].filter((at) => !jobIds.has(at.split(" ")[1] ?? ""))).toEqual([]);
		const several = [...ids].filter(([, set]) => set.size !== 1).map(([at, set]) => `${at}: ${[...set].join(", ")}`);
		expect(several).toEqual([]);
		expect(ids.size).toBe(expected);
		// At-least-once with a stable id: the same id delivered twice is allowed, and reported.
		const raw = deliveries.length - ids.size;
		console.log(
			`restart: ready again after ${(readyAfter / 1000).toFixed(1)} s; ${answered.size} uploads answered before the kill, ${failed.length} re-sent; ${jobs.length} jobs terminal ` +
				`${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart; ${deliveries.length} deliveries ` +
				`(${before} before the kill), ${ids.size} distinct (job, endpoint), ${raw} repeated with the same id; ` +
				`${events.length} stream events (${eventsAtKill} before the kill, stream reopened ${reopened} times)`,
		);
		// The start-up sweep re-queued the jobs whose messages died with the first stack at once (the
		// periodic sweep, which the deadline above leaves room for, would take 5 minutes to find them).
		const startup = restarted.output().match(/recovery at start: .*/)?.[0] ?? "no start-up recovery line";
		console.log(startup);
		expect(startup).toMatch(/^recovery at start: [1-9]\d* jobs re-queued/);
	}, 720_000);
});

describe("npm run dev on Ctrl-C", () => {
	it("stops: every process of the restarted stack exits, and its port is free", async () => {
		if (!second) throw new Error("the restart test did not start the stack again");
		const stack = second;
		const pid = stack.server.pid!;
		process.kill(-pid, "SIGINT");
		const stopped = await Promise.race([stack.exited.then(() => true), sleep(30_000).then(() => false)]);
		expect(stopped, stack.output().slice(-2000)).toBe(true);
		await until("every process of npm run dev to exit", 15_000, async () => (groupAlive(pid) ? undefined : true));
		expect(groupAlive(pid)).toBe(false);
		expect(await portIsFree(stack.port)).toBe(true);
	}, 60_000);
});
