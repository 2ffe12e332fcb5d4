/**
 * Retention under `npm run dev`: the local sweep schedule (`--sweep-every`) runs the retention
 * sweep as the cron does in production, and its variables are set like any other
 * (`--var RETENTION_JOBS_DAYS=0`). An object captioned twice loses its superseded job at the next
 * sweep; its latest job stays. On the node project's tuned stack, beside batch-cap.test.ts: the
 * in-flight cap counts API keys' jobs, and this test works as the admin; its object is its own.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { until } from "../../scripts/lib/dev-stack.ts";
import { root } from "../../scripts/lib/wrangler.ts";
import { type SharedStack, tunedDevStack } from "./support/shared-stack.ts";

let stack: SharedStack;

// Started by the first of its files to ask (a boot: up to a couple of minutes on a loaded machine).
beforeAll(async () => {
	stack = await tunedDevStack();
}, 180_000);

afterAll(async () => {
	await stack?.release();
});

const JobBody = z.object({ id: z.string(), status: z.string() });

describe("npm run dev -- --var RETENTION_JOBS_DAYS=0", () => {
	it("deletes a superseded job at the next local sweep and keeps the object's latest job", async () => {
		const auth = { Authorization: `Bearer ${stack.token}` };
		const key = `retention/${crypto.randomUUID()}.png`;
		const job = async (id: string) => fetch(`${stack.url}/v1/jobs/${id}`, { headers: auth });
		const finished = (id: string) =>
			until(
				`job ${id} to finish`,
				60_000,
				async () => {
					const body = JobBody.parse(await (await job(id)).json());
					return body.status === "succeeded" ? body : undefined;
				},
				() => stack.output().slice(-4000),
			);

		const upload = await fetch(`${stack.url}/v1/images/${key}`, {
			method: "PUT",
			headers: { ...auth, "Content-Type": "image/png" },
			body: readFileSync(path.join(root, "samples/shapes-on-white.png")),
		});
		expect(upload.status).toBe(202);
		const first = await finished(JobBody.parse(await upload.json()).id);
		// Nothing supersedes the first job before the second is made: a sweep that deletes it logs after this.
		const before = stack.output().length;
		const again = await fetch(`${stack.url}/v1/jobs`, {
			method: "POST",
			headers: { ...auth, "Content-Type": "application/json" },
			body: JSON.stringify({ key, prompt: "Describe the shapes" }),
		});
		expect(again.status).toBe(202);
		const latest = await finished(JobBody.parse(await again.json()).id);

		await until(
			"the superseded job to be deleted",
			30_000,
			async () => ((await job(first.id)).status === 404 ? true : undefined),
			() => stack.output().slice(-4000),
		);
		expect((await job(latest.id)).status).toBe(200);
		// The sweep's report (its count may include the other file's superseded jobs, swept at once).
		await until(
			"the sweep to report deleted jobs",
			10_000,
			async () => (/jobs past retention deleted/.test(stack.output().slice(before)) ? true : undefined),
			() => stack.output().slice(-4000),
		);
	}, 180_000);
});
