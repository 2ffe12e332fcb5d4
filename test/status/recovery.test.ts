/**
 * `POST /v1/admin/sweep`: `npm run dev`'s way to run the crons' recovery (crons do not fire under
 * `wrangler dev`), through the consumer's and webhooks Worker's recovery entrypoints. A job left
 * queued by a stack that restarted is captioned without any other action.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SweepReport } from "../../shared/recovery";
import { fixture, uniqueKey } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { onlyJob, waitForTerminal } from "../support/queue";
import { call, errorOf, invalidFields, parsed } from "./support";

describe("POST /v1/admin/sweep", () => {
	it("re-queues a job whose message died with the previous run, and the job is captioned", async () => {
		const key = uniqueKey("lost-in-restart.png");
		await env.BUCKET.put(key, await fixture("small.png"));
		const head = await env.BUCKET.head(key);
		const restartedAt = Date.now();
		// Created just before the restart: far younger than the production staleness (10 minutes).
		const before = restartedAt - 2_000;
		const job = await insertJob({
			key,
			etag: head?.etag ?? "",
			size: head?.size ?? 0,
			created_at: before,
			updated_at: before,
		});

		// Without `restarted_at` the production cut-offs apply: the job is too young to be stalled.
		const idle = await parsed(await call("POST", "/v1/admin/sweep", { json: {} }), SweepReport);
		expect(idle.consumer.truncated).toBe(false);
		expect(await onlyJob(key)).toMatchObject({ id: job.id, status: "queued", updated_at: before });

		const res = await call("POST", "/v1/admin/sweep", { json: { restarted_at: restartedAt } });
		expect(res.status).toBe(200);
		const report = await parsed(res, SweepReport);
		expect(report.consumer.jobs_requeued).toBeGreaterThanOrEqual(1);
		expect(await waitForTerminal(key)).toMatchObject({ status: "succeeded" });
	});

	it("refuses cut-offs it does not know (400)", async () => {
		const res = await call("POST", "/v1/admin/sweep", { json: { restarted_at: "yesterday", since: 1 } });
		expect(res.status).toBe(400);
		expect((await errorOf(res.clone())).code).toBe("invalid_request");
		expect(await invalidFields(res)).toContain("restarted_at");
	});
});
