import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { resetModels, warmUp } from "../support/models";
import { jobsForKey, waitForTerminal } from "../support/queue";

// The first model has answered once: a failure then counts toward its circuit instead of opening it.
beforeEach(async () => {
	await resetModels();
	await warmUp();
});

describe("through the real caption-jobs queue", () => {
	it("a notification sent with the queue producer is delivered to the consumer and captioned", async () => {
		const key = uniqueKey("via-queue.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await env.CAPTION_JOBS.send(notification, { contentType: "json" });
		const job = await waitForTerminal(key);
		expect(job).toMatchObject({ status: "succeeded", content_type: "image/jpeg" });
		expect(job.caption).toContain("64×48 pixels");
	});

	it("a duplicate notification sent twice through the queue makes one job and one model call", async () => {
		const key = uniqueKey("twice.jpg");
		const notification = await upload(key, await fixture("small.png"));
		await env.CAPTION_JOBS.sendBatch([{ body: notification }, { body: notification }]);
		await waitForTerminal(key);
		// Give a late duplicate time to arrive and be acknowledged.
		await new Promise((resolve) => setTimeout(resolve, 1500));
		expect(await jobsForKey(key)).toHaveLength(1);
		expect(emulator.callsTo()).toBe(1);
	});

	it("a transient error is retried by the queue and the job then succeeds", async () => {
		emulator.inject({ code: 3040, times: 1 });
		const key = uniqueKey("retried.jpg");
		await env.CAPTION_JOBS.send(await upload(key, await fixture("small.jpg")));
		const job = await waitForTerminal(key);
		expect(job).toMatchObject({ status: "succeeded", attempts: 2 });
	});

	it("a message that keeps failing ends its job failed with retries_exhausted on the last delivery", async () => {
		emulator.inject({ code: 3040, times: 100 });
		const key = uniqueKey("doomed.jpg");
		await env.CAPTION_JOBS.send(await upload(key, await fixture("small.jpg")));
		const job = await waitForTerminal(key, 25_000);
		// Test config: max_retries 2, so the third delivery gives up.
		expect(job).toMatchObject({ status: "failed", error_code: "retries_exhausted", attempts: 3 });
	});
});
