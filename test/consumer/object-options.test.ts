/**
 * Caption options of objects written straight into the bucket (not through the API): a
 * `callback-url` the API would refuse fails the job with invalid_options, and a rewrite of the same
 * bytes with other metadata is a new job.
 */
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import status from "../../workers/status/index";
import { ADMIN, parsed } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { resetModels } from "../support/models";
import { counter, jobsForKey, onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

describe("an unsafe callback-url in an object's metadata", () => {
	it.each([
		"http://169.254.169.254/latest/meta-data/",
		"http://10.0.0.7/hook",
		"https://[fd00::1]/hook",
		"http://192.168.1.1:8080/hook",
	])("%s fails the job with invalid_options, without a model call or a delivery", async (url) => {
		const key = uniqueKey("unsafe-callback.jpg");
		const { ids, result } = await runConsumer([await upload(key, await fixture("small.jpg"), { "callback-url": url })]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options" });
		expect(job.error_message).toContain("callback-url");
		expect(emulator.callsTo()).toBe(0);
		// The API shows the same failure.
		const res = await status.fetch(
			new Request(`https://status.test/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${ADMIN}` } }),
			env,
			createExecutionContext(),
		);
		expect(await parsed(res, Job)).toMatchObject({ status: "failed", error: { code: "invalid_options" } });
		const deliveries = await env.DB.prepare(
			`SELECT count(*) AS n FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE ${isEventOfJob("e.", "?1")} AND d.subscription_id IS NULL`,
		)
			.bind(job.id)
			.first("n");
		expect(deliveries).toBe(0);
	});

	it("in production a loopback http callback-url is refused too; locally it is allowed", async () => {
		const url = "http://127.0.0.1:9/hook";
		const prodKey = uniqueKey("prod-callback.jpg");
		await runConsumer([await upload(prodKey, await fixture("small.jpg"), { "callback-url": url })], {
			env: { DEPLOY_MODE: "production" },
		});
		expect(await onlyJob(prodKey)).toMatchObject({ status: "failed", error_code: "invalid_options" });

		const localKey = uniqueKey("local-callback.jpg");
		await runConsumer([await upload(localKey, await fixture("small.jpg"), { "callback-url": url })]);
		expect(await onlyJob(localKey)).toMatchObject({ status: "succeeded", callback_url: url });
	});
});

describe("rewriting an object with the same bytes", () => {
	it("and other metadata makes a new job; with the same metadata, its notification is a duplicate", async () => {
		const key = uniqueKey("rewrite.jpg");
		const jpeg = await fixture("small.jpg");
		await runConsumer([await upload(key, jpeg, { prompt: "What is it?" })]);
		const duplicates = await counter("duplicate_messages");
		// The same bytes and metadata again: R2 sends a second notification for the same job.
		await runConsumer([await upload(key, jpeg, { prompt: "What is it?" })]);
		expect(await counter("duplicate_messages")).toBe(duplicates + 1);
		// Other metadata: a new job, captioned with it.
		await runConsumer([await upload(key, jpeg, { prompt: "Is it a cat?" })]);
		const rows = await jobsForKey(key);
		expect(rows.map((r) => [r.status, r.prompt])).toEqual([
			["succeeded", "What is it?"],
			["succeeded", "Is it a cat?"],
		]);
		expect(rows[0]?.etag).toBe(rows[1]?.etag);
		expect(emulator.callsTo()).toBe(2);
	});
});
