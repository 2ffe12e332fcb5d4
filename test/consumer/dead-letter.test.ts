import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { resetModels, warmUp } from "../support/models";
import { onlyJob, runConsumer, runScheduled, waitForTerminal } from "../support/queue";

// The first model has answered once, so a capacity error retries the message (a first call's
// failure would open the model's circuit and move the job on to the next model instead).
beforeEach(async () => {
	await resetModels();
	await warmUp();
});

describe("dead letters and stalled jobs", () => {
	it("a dead-lettered notification whose job was retried fails it with dead_lettered", async () => {
		emulator.inject({ code: 3040, times: 1 });
		const key = uniqueKey("dlq.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await runConsumer([notification]);
		expect(await onlyJob(key)).toMatchObject({ status: "queued" });
		const { ids, result } = await runConsumer([notification], { queue: "caption-jobs-dlq" });
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "dead_lettered" });
		expect(job.completed_at).not.toBeNull();
	});

	it("a dead-lettered notification that never made a job still leaves a failed job behind", async () => {
		const key = uniqueKey("never-claimed.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await runConsumer([notification], { queue: "caption-jobs-dlq" });
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "dead_lettered", attempts: 0 });
		expect(emulator.callsTo()).toBe(0);
	});

	it("a dead letter for a job that already succeeded changes nothing", async () => {
		const key = uniqueKey("done.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await runConsumer([notification]);
		await runConsumer([notification], { queue: "caption-jobs-dlq" });
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", error_code: null });
	});

	it("the cron sweeper re-queues a job whose lease expired, and the real queue captions it", async () => {
		const key = uniqueKey("stalled.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const old = Date.now() - 10 * 60_000;
		await env.DB.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, lease_token, lease_expires_at,
				created_at, updated_at, started_at)
			VALUES (?1, 'notification', 'images', ?2, ?3, ?4, 'processing', 1, 'lost', ?5, ?5, ?5, ?5)`,
		)
			.bind(`job_stalled_${Date.now()}`, key, notification.object.eTag, notification.object.size, old)
			.run();
		await runScheduled();
		const job = await waitForTerminal(key);
		expect(job).toMatchObject({ status: "succeeded", attempts: 2 });
	});

	it("the sweeper fails a stalled job that has used up its attempts with retries_exhausted", async () => {
		const key = uniqueKey("hopeless.jpg");
		const old = Date.now() - 10 * 60_000;
		await env.DB.prepare(
			`INSERT INTO jobs (id, source, bucket, key, etag, size, status, attempts, lease_token, lease_expires_at,
				created_at, updated_at, started_at)
			VALUES (?1, 'notification', 'images', ?2, 'etag-x', 1, 'processing', 9, 'lost', ?3, ?3, ?3, ?3)`,
		)
			.bind(`job_hopeless_${Date.now()}`, key, old)
			.run();
		await runScheduled();
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
	});
});
