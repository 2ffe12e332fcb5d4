/**
 * The main job, as a user runs it: `npm run dev` (every Worker in one `wrangler dev`, local D1,
 * R2 and Queues, the model emulator), an upload through the API, the job polled until it
 * succeeds, then Ctrl-C. Runs on its own port and a temporary state directory, so a developer's
 * running server and local data are left alone.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevStack, groupAlive, portIsFree, sleep, spawnDevStack, until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";

let stack: DevStack;

beforeAll(async () => {
	// Migrated by `npm run dev` itself, as on a fresh clone (the other stacks start on a migrated copy).
	stack = await spawnDevStack("smoke", { unmigrated: true });
}, 10_000);

afterAll(() => stack.dispose());

describe("npm run dev", () => {
	it("limits wrong tokens by the client's socket address (wrangler dev sets CF-Connecting-IP), not the admin's requests", async () => {
		await stack.ready(90_000);
		const get = (token: string) => fetch(`${stack.url}/v1/stats`, { headers: { Authorization: `Bearer ${token}` } });
		expect((await get(stack.token)).status).toBe(200);
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
		const elsewhere = await fetch(`${stack.url}/v1/stats`, {
			headers: { Authorization: "Bearer rck_wrong", "CF-Connecting-IP": "192.0.2.77" },
		});
		expect(elsewhere.status).toBe(401);
		// The admin token authenticated from this address before: not refused with the guesses beside it.
		expect((await get(stack.token)).status).toBe(200);
	});

	it("serves /healthz, captions an uploaded image end to end, and stops cleanly on Ctrl-C", async () => {
		await stack.ready(90_000);
		const api = stack.url;

		// The launcher made .dev.vars from the example on a fresh clone; the API reads it too.
		const auth = { Authorization: `Bearer ${stack.token}` };
		const key = `smoke/${crypto.randomUUID()}.png`;
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
			() => stack.output().slice(-4000),
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

		const pid = stack.server.pid!;
		process.kill(-pid, "SIGINT");
		const stopped = await Promise.race([stack.exited.then(() => true), sleep(30_000).then(() => false)]);
		expect(stopped, stack.output().slice(-2000)).toBe(true);
		await until("every process of npm run dev to exit", 15_000, async () => (groupAlive(pid) ? undefined : true));
		expect(groupAlive(pid)).toBe(false);
		expect(await portIsFree(stack.port)).toBe(true);
	}, 180_000);
});
