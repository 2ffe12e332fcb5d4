import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { R2Notification } from "../../shared/queue/caption-jobs";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { resetModels, warmUp } from "../support/models";
import { handledMessages } from "../support/outcomes";
import { until } from "../support/poll";
import { jobsForKey, waitForTerminal } from "../support/queue";

const isFor = (body: unknown, key: string) => R2Notification.safeParse(body).data?.object.key === key;

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
		expect(await waitForTerminal(key)).toMatchObject({ status: "succeeded" });
		// Both copies have been handled: one captioned, the other found the job and was acknowledged as
		// a duplicate or sent back until the first one's lease ends.
		const copies = await until("both copies of the notification were handled", async () => {
			const handled = handledMessages.filter((m) => m.queue === "caption-jobs" && isFor(m.body, key));
			return handled.length === 2 ? handled : undefined;
		});
		expect(copies.map((c) => c.outcome.kind)).toContain("ack");
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
