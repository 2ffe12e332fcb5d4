/**
 * A key's batch bigger than MAX_JOBS_IN_FLIGHT, through the real queues of `npm run dev` (the node
 * project's tuned stack: MAX_JOBS_IN_FLIGHT=2, a slow emulator, and a held page looking again after
 * 1 s): nobody re-drives it, yet it finishes with every job succeeded, and its in-flight jobs, read
 * from the API all along, never exceed the cap. retention-dev.test.ts shares the stack (its sweep
 * deletes superseded jobs every 2 s: here the uploads' jobs, which the batch's jobs supersede and
 * nothing below reads; never a job of a batch that is still there, nor an unfinished one).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { type SharedStack, tunedDevStack } from "./support/shared-stack.ts";
import { TUNED_STACK } from "./support/tuned-stack.ts";

const CAP = TUNED_STACK.maxJobsInFlight;
let stack: SharedStack;

// Started by the first of its files to ask (a boot: up to a couple of minutes on a loaded machine).
beforeAll(async () => {
	stack = await tunedDevStack();
}, 180_000);

afterAll(async () => {
	await stack?.release();
});

interface JobJson {
	key: string;
	status: string;
}

describe("a batch at its key's in-flight cap", () => {
	it("waits at the cap and goes on as jobs finish, with never more than the cap in flight", async () => {
		const api = stack.url;
		const admin = { Authorization: `Bearer ${stack.token}` };
		const prefix = `cap-${crypto.randomUUID()}/`;
		const image = readFileSync(path.join(root, "samples/shapes-on-white.png"));
		const keys = Array.from({ length: 7 }, (_, i) => `${prefix}${i}.png`);
		for (const key of keys) {
			const res = await fetch(`${api}/v1/images/${key}`, {
				method: "PUT",
				headers: { ...admin, "Content-Type": "image/png" },
				body: image,
			});
			expect(res.status).toBe(202);
		}
		const created = await fetch(`${api}/v1/keys`, {
			method: "POST",
			headers: { ...admin, "content-type": "application/json" },
			body: JSON.stringify({ prefix }),
		});
		const { token } = (await created.json()) as { token: string };
		const auth = { Authorization: `Bearer ${token}` };
		const res = await fetch(`${api}/v1/batches`, {
			method: "POST",
			headers: { ...auth, "content-type": "application/json" },
			body: JSON.stringify({ prefix, skip_captioned: false }),
		});
		expect(res.status).toBe(202);
		const { id } = (await res.json()) as { id: string };

		let peak = 0;
		const done = await until(
			"the batch to complete",
			100_000,
			async () => {
				// The batch first: once it is complete, the jobs read after it must all have ended.
				const batch = (await (await fetch(`${api}/v1/batches/${id}`, { headers: auth })).json()) as {
					status: string;
					completed_at: string | null;
					counts: { succeeded: number; total: number };
				};
				const jobs = await fetch(`${api}/v1/jobs?batch_id=${id}&limit=100`, { headers: auth });
				const page = (await jobs.json()) as { data: JobJson[] };
				const inFlight = page.data.filter((j) => j.status === "queued" || j.status === "processing").length;
				peak = Math.max(peak, inFlight);
				return batch.completed_at === null ? undefined : { batch, jobs: page.data };
			},
			() => stack.output().slice(-4000),
		);
		expect(done.batch).toMatchObject({ status: "completed", counts: { succeeded: 7, total: 7 } });
		expect(done.jobs.map((j) => [j.key, j.status]).sort()).toEqual(keys.map((k) => [k, "succeeded"]));
		expect(peak).toBeGreaterThan(0);
		expect(peak).toBeLessThanOrEqual(CAP);
		// It was held at the cap at least once (the consumer logs each hold with its batch).
		expect(stack.output()).toContain(`"event":"batch_page_held","batch_id":"${id}"`);
	}, 200_000);
});
