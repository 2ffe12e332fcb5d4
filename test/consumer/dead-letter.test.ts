import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { sqlText, whileD1Refuses } from "../support/d1-faults";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { resetModels, warmUp } from "../support/models";
import { until } from "../support/poll";
import { jobsForKey, onlyJob, runConsumer, runScheduled, waitForTerminal } from "../support/queue";

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

	it("a dead-lettered caption-job message (API-made or re-queued by the sweeper) fails its job with dead_lettered", async () => {
		const key = uniqueKey("api-dlq.jpg");
		const queued = await insertJob({ key, status: "queued" });
		const { ids, result } = await runConsumer([{ kind: "caption-job", job_id: queued.id }], {
			queue: "caption-jobs-dlq",
		});
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ id: queued.id, source: "api", status: "failed", error_code: "dead_lettered" });
		expect(job.completed_at).not.toBeNull();
		const event = await env.DB.prepare(`SELECT type FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
			.bind(queued.id)
			.first("type");
		expect(event).toBe("job.failed");
	});

	it("a dead letter that D1 refuses is retried alone; the rest of its batch still fails their jobs", async () => {
		const refusedKey = uniqueKey("refused.jpg");
		const refused = await upload(refusedKey, await fixture("small.jpg"));
		const otherKey = uniqueKey("other.jpg");
		const other = await upload(otherKey, await fixture("small.jpg"));
		const apiJob = await insertJob({ key: uniqueKey("api-other.jpg") });

		const { ids, result } = await whileD1Refuses(
			{ table: "jobs", write: "INSERT", when: `NEW.key = ${sqlText(refusedKey)}` },
			() =>
				runConsumer([other, refused, { kind: "caption-job", job_id: apiJob.id }], {
					queue: "caption-jobs-dlq",
				}),
		);
		expect(result.retryMessages).toEqual([{ msgId: ids[1] }]);
		expect(result.explicitAcks.sort()).toEqual([ids[0], ids[2]].sort());
		expect(await onlyJob(otherKey)).toMatchObject({ status: "failed", error_code: "dead_lettered" });
		expect(await onlyJob(apiJob.key)).toMatchObject({ status: "failed", error_code: "dead_lettered" });
		expect(await jobsForKey(refusedKey)).toEqual([]);
	});

	it("a notification that never made a job, dead-lettered while D1 is down for hours, waits it out and still ends failed", async () => {
		const key = uniqueKey("d1-outage.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		// D1 refuses the DLQ handler's first ten deliveries (its row, the only trace of the image).
		const delays = await whileD1Refuses(
			{ table: "jobs", write: "INSERT", when: `NEW.key = ${sqlText(key)}` },
			async () => {
				const asked: (number | undefined)[] = [];
				for (let attempts = 1; attempts <= 10; attempts++) {
					const { ids, result, retryDelays } = await runConsumer([notification], {
						queue: "caption-jobs-dlq",
						attempts,
					});
					expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
					asked.push(retryDelays.get(ids[0] ?? ""));
				}
				return asked;
			},
		);
		// A minute, doubling: ten deliveries span 17 hours, not the 2-4-8 s of a live message.
		expect(delays).toEqual([60, 120, 240, 480, 960, 1920, 3840, 7680, 15_360, 30_720]);
		expect(await jobsForKey(key)).toEqual([]);
		// D1 is back: the eleventh delivery records the job, failed.
		const { ids, result } = await runConsumer([notification], { queue: "caption-jobs-dlq", attempts: 11 });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "dead_lettered", attempts: 0 });
	});

	it("a caption-job dead letter that D1 refuses is retried soon: its job's row stays for the stalled-job sweep", async () => {
		const queued = await insertJob({ key: uniqueKey("d1-refused-job.jpg"), status: "queued" });
		const { ids, result, retryDelays } = await whileD1Refuses(
			{ table: "jobs", write: "UPDATE", when: `OLD.id = ${sqlText(queued.id)}` },
			() => runConsumer([{ kind: "caption-job", job_id: queued.id }], { queue: "caption-jobs-dlq", attempts: 3 }),
		);
		expect(result.retryMessages).toEqual([{ msgId: ids[0] }]);
		expect(retryDelays.get(ids[0] ?? "")).toBe(8);
		expect(await onlyJob(queued.key)).toMatchObject({ status: "queued" });
	});

	it("a dead letter for a job that already succeeded changes nothing", async () => {
		const key = uniqueKey("done.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await runConsumer([notification]);
		await runConsumer([notification], { queue: "caption-jobs-dlq" });
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", error_code: null });
	});

	it("a duplicate dead-lettered while another consumer holds the job's lease leaves the job to that consumer", async () => {
		// The first copy is still captioning (slow model) when a duplicate finds the job leased
		// ("busy"), waits out its retries and reaches the dead-letter queue.
		emulator.overrides.latencyMs = 1500;
		const key = uniqueKey("dlq-race.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const first = runConsumer([notification]);
		await until("the first copy claimed the job", async () => {
			const [job] = await jobsForKey(key);
			return job?.status === "processing" ? job : undefined;
		});
		const duplicate = await runConsumer([notification], { attempts: 6 });
		expect(duplicate.result.retryMessages).toEqual([{ msgId: duplicate.ids[0] }]);
		const dead = await runConsumer([notification], { queue: "caption-jobs-dlq" });
		expect(dead.result.explicitAcks).toEqual(dead.ids);
		expect(await onlyJob(key)).toMatchObject({ status: "processing", error_code: null });

		const { ids, result } = await first;
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "succeeded", error_code: null, attempts: 1 });
		const events = await env.DB.prepare(`SELECT type FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
			.bind(job.id)
			.all();
		expect(events.results).toEqual([{ type: "job.succeeded" }]);
	});

	it("a dead letter for a job whose lease expired (its consumer died) still fails it", async () => {
		const key = uniqueKey("dlq-expired.jpg");
		const old = Date.now() - 60_000;
		const held = await insertJob({
			key,
			status: "processing",
			lease_token: "dead",
			lease_expires_at: old,
			attempts: 1,
		});
		await runConsumer([{ kind: "caption-job", job_id: held.id }], { queue: "caption-jobs-dlq" });
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "dead_lettered", lease_token: null });
	});

	it("the cron sweeper re-queues a job whose lease expired, and the real queue captions it", async () => {
		const key = uniqueKey("stalled.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const old = Date.now() - 10 * 60_000;
		await insertJob({
			key,
			source: "notification",
			etag: notification.object.eTag ?? "",
			size: notification.object.size ?? null,
			status: "processing",
			attempts: 1,
			lease_token: "lost",
			lease_expires_at: old,
			created_at: old,
			started_at: old,
		});
		await runScheduled();
		const job = await waitForTerminal(key);
		expect(job).toMatchObject({ status: "succeeded", attempts: 2 });
	});

	it("the sweeper fails a stalled job that has used up its attempts with retries_exhausted", async () => {
		const key = uniqueKey("hopeless.jpg");
		const old = Date.now() - 10 * 60_000;
		await insertJob({
			key,
			source: "notification",
			etag: "etag-x",
			size: 1,
			status: "processing",
			attempts: 9,
			lease_token: "lost",
			lease_expires_at: old,
			created_at: old,
			started_at: old,
		});
		await runScheduled();
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
	});
});
