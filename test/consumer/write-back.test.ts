/**
 * Write-back: the sidecar and the image's metadata with their exact contents, mode skip, exactly
 * once under redelivery and transient R2 errors, and loop safety: the notifications write-back
 * causes (enqueued locally as R2 would send them) make no job, no model call and no webhook, and
 * are counted; a sidecar-like object a user puts is never captioned.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { toJob } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { eventJobId } from "../../shared/webhooks/job-event";
import { readSettings } from "../../workers/consumer/config";
import { sweepStalledJobs } from "../../workers/consumer/sweeper";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob, insertJobs } from "../support/jobs";
import { resetModels } from "../support/models";
import { counter, jobsForKey, onlyJob, runConsumer } from "../support/queue";
import { countingBucket, recordingQueue } from "../support/recording";

beforeEach(resetModels);

async function eventsFor(jobIds: string[]): Promise<number> {
	const n = await env.DB.prepare(
		`SELECT count(*) AS n FROM webhook_events WHERE ${eventJobId()} IN (SELECT value FROM json_each(?))`,
	)
		.bind(JSON.stringify(jobIds))
		.first("n");
	return Number(n);
}

/** Captions one upload with a recording caption queue; returns the job and the notifications write-back sent. */
async function captionAndRecord(key: string, metadata: Record<string, string>, name = "small.png") {
	const { queue, sent } = recordingQueue();
	const { ids, result } = await runConsumer([await upload(key, await fixture(name), metadata)], {
		env: { CAPTION_JOBS: queue },
	});
	expect(result.explicitAcks).toEqual(ids);
	return { job: await onlyJob(key), sent };
}

describe("sidecar write-back", () => {
	it("writes <key without extension>.txt with the tags comma-separated, marked with the job id", async () => {
		const key = uniqueKey("photos/cat.photo.png");
		const { job } = await captionAndRecord(key, { output: "tags", "write-back": "sidecar" });
		expect(job.status).toBe("succeeded");
		const sidecar = await env.BUCKET.get(key.replace(/\.png$/, ".txt"));
		expect(sidecar).not.toBeNull();
		expect(await sidecar?.text()).toBe((JSON.parse(job.result ?? "[]") as string[]).join(", "));
		expect(sidecar?.customMetadata).toEqual({ "caption-job": job.id });
		expect(sidecar?.httpMetadata?.contentType).toBe("text/plain; charset=utf-8");
		expect(toJob(await onlyJob(key)).write_back).toEqual({ target: "sidecar", status: "written", error: null });
	});

	it("writes .json with the JSON result for a json_schema output", async () => {
		const key = uniqueKey("record.jpg");
		const schema = { type: "object", required: ["width"], properties: { width: { type: "integer" } } };
		await captionAndRecord(
			key,
			{ output: JSON.stringify({ json_schema: schema }), "write-back": "sidecar" },
			"small.jpg",
		);
		const job = await onlyJob(key);
		const sidecar = await env.BUCKET.get(key.replace(/\.jpg$/, ".json"));
		expect(await sidecar?.text()).toBe(JSON.stringify(JSON.parse(job.result ?? "null")));
		expect(JSON.parse((await env.BUCKET.get(key.replace(/\.jpg$/, ".json")).then((o) => o?.text())) ?? "")).toEqual({
			width: expect.any(Number),
		});
		expect(sidecar?.httpMetadata?.contentType).toBe("application/json");
	});

	it("mode skip leaves an existing sidecar alone and says so", async () => {
		const key = uniqueKey("kept.png");
		const sidecarKey = key.replace(/\.png$/, ".txt");
		await env.BUCKET.put(sidecarKey, "hand-written caption");
		const { sent } = await captionAndRecord(key, { output: "title", "write-back": "sidecar:skip" });
		expect(await (await env.BUCKET.get(sidecarKey))?.text()).toBe("hand-written caption");
		expect(toJob(await onlyJob(key)).write_back).toEqual({ target: "sidecar", status: "skipped", error: null });
		expect(sent).toEqual([]);
	});
});

describe("sidecar write-back refused", () => {
	it("a sidecar key over R2's 1,024 bytes fails the write-back at once, without a put", async () => {
		// A key of 1,024 bytes with no extension: its sidecar's is 1,028.
		const prefix = uniqueKey("");
		const key = `${prefix}${"k".repeat(1024 - prefix.length)}`;
		expect(new TextEncoder().encode(key).byteLength).toBe(1024);
		const notification = await upload(key, await fixture("small.png"), { "write-back": "sidecar" });
		const { bucket, puts } = countingBucket(env.BUCKET);
		const { ids, result } = await runConsumer([notification], {
			env: { BUCKET: bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		expect(result.explicitAcks).toEqual(ids);
		expect(puts).toEqual([]);
		const job = toJob(await onlyJob(key));
		expect(job.status).toBe("succeeded");
		expect(job.write_back).toMatchObject({ target: "sidecar", status: "failed" });
		expect(job.write_back?.error).toContain("its key is 1028 bytes, over R2's 1024");
	});

	it("a sidecar key R2 refuses (10020) fails the write-back at once, after one put", async () => {
		const key = uniqueKey("refused-name.png");
		const notification = await upload(key, await fixture("small.png"), { "write-back": "sidecar" });
		const refusing = "put: The specified object name is not valid. (10020)";
		const { bucket, puts } = countingBucket(env.BUCKET, 100, refusing);
		const { ids, result } = await runConsumer([notification], {
			env: { BUCKET: bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		expect(result.explicitAcks).toEqual(ids);
		expect(puts).toEqual([key.replace(/\.png$/, ".txt")]);
		expect(toJob(await onlyJob(key)).write_back?.error).toContain("R2 refused its key");
	});
});

describe("metadata write-back", () => {
	it("rewrites the image with its bytes unchanged and caption + caption-job in its metadata", async () => {
		const key = uniqueKey("meta.png");
		const bytes = await fixture("small.png");
		const before = await env.BUCKET.put(key, bytes, {
			customMetadata: { output: "alt_text", "write-back": "metadata", owner: "me" },
		});
		await runConsumer(
			[
				{
					account: "local",
					action: "PutObject",
					bucket: "images",
					object: { key, size: before.size, eTag: before.etag },
					eventTime: new Date().toISOString(),
				},
			],
			{
				env: { CAPTION_JOBS: recordingQueue().queue },
			},
		);
		const job = await onlyJob(key);
		const object = await env.BUCKET.get(key);
		expect(new Uint8Array(await (object?.arrayBuffer() ?? new ArrayBuffer(0)))).toEqual(bytes);
		expect(object?.etag).toBe(before.etag);
		expect(object?.customMetadata).toEqual({
			output: "alt_text",
			"write-back": "metadata",
			owner: "me",
			caption: job.caption,
			"caption-job": job.id,
		});
		expect(toJob(job).write_back).toEqual({ target: "metadata", status: "written", error: null });
	});
});

describe("metadata write-back refused", () => {
	it("metadata R2 refuses as too large (under 8 KiB in UTF-8) fails the write-back at once: use a sidecar", async () => {
		const key = uniqueKey("meta-refused.png");
		// Local R2 counts a string with a character over U+00FF at two bytes a character: this note
		// makes the object's metadata 8,152 of R2's 8,192 bytes (4,089 in UTF-8), and the caption and
		// its job id take it over.
		const note = `${"a".repeat(4064)}€`;
		const metadata = { "write-back": "metadata", note };
		const notification = await upload(key, await fixture("small.png"), metadata);
		const { bucket, puts } = countingBucket(env.BUCKET);
		const { ids, result } = await runConsumer([notification], {
			env: { BUCKET: bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		expect(result.explicitAcks).toEqual(ids);
		expect(puts).toEqual([key]);
		const job = toJob(await onlyJob(key));
		expect(job.status).toBe("succeeded");
		expect(job.write_back).toMatchObject({ target: "metadata", status: "failed" });
		expect(job.write_back?.error).toContain("Use a sidecar");
		expect((await env.BUCKET.head(key))?.customMetadata).toEqual(metadata);
	});
});

describe("loop safety", () => {
	it("the echoes of a sidecar and a metadata write-back make no job, model call or webhook, and are counted", async () => {
		const sidecarImage = uniqueKey("echo-a.png");
		const metaImage = uniqueKey("echo-b.png");
		const a = await captionAndRecord(sidecarImage, { output: "tags", "write-back": "sidecar" });
		const b = await captionAndRecord(metaImage, { output: "title", "write-back": "metadata" });
		// Locally, each write enqueued the notification R2 would send.
		expect(a.sent).toHaveLength(1);
		expect(b.sent).toHaveLength(1);
		const echoesBefore = await counter("write_back_echoes");
		const callsBefore = emulator.callsTo();
		const { ids, result } = await runConsumer([...a.sent, ...b.sent]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await counter("write_back_echoes")).toBe(echoesBefore + 2);
		expect(emulator.callsTo()).toBe(callsBefore);
		expect(await jobsForKey(sidecarImage.replace(/\.png$/, ".txt"))).toEqual([]);
		expect(await jobsForKey(metaImage)).toHaveLength(1);
		expect(await eventsFor([a.job.id, b.job.id])).toBe(2);
		const stats = await (await import("../status/support")).call("GET", "/v1/stats");
		const body = (await stats.json()) as { counters: Record<string, number> };
		expect(body.counters.write_back_echoes).toBeGreaterThanOrEqual(echoesBefore + 2);
	});

	it("an older job's write-back resumed after a newer caption of the object succeeded is skipped", async () => {
		const key = uniqueKey("superseded.png");
		const { eTag } = (await upload(key, await fixture("small.png"))).object;
		const at = Date.now() - 30 * 60_000;
		const done = { etag: eTag ?? "", status: "succeeded" as const, started_at: at, completed_at: at };
		// The older job's write-back was left pending; a re-caption of the same bytes succeeded after it.
		const [older, newer] = await insertJobs([
			{
				key,
				...done,
				caption: "An old caption.",
				created_at: at,
				updated_at: at,
				write_back: "sidecar",
				write_back_status: "pending",
			},
			{ key, ...done, caption: "A newer caption.", created_at: at + 1, updated_at: at + 1 },
		]);
		if (!older || !newer) throw new Error("jobs not inserted");
		const { ids, result } = await runConsumer([{ kind: "caption-job", job_id: older.id }]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await env.BUCKET.head(key.replace(/\.png$/, ".txt"))).toBeNull();
		const row = (await jobsForKey(key)).find((j) => j.id === older.id);
		expect(row && toJob(row).write_back).toEqual({ target: "sidecar", status: "skipped", error: null });
	});

	it("a job made first but finished last holds the current caption: its write-back is written", async () => {
		const key = uniqueKey("finished-last.png");
		const { eTag } = (await upload(key, await fixture("small.png"))).object;
		const at = Date.now() - 30 * 60_000;
		const done = { etag: eTag ?? "", status: "succeeded" as const, started_at: at };
		// Made first, retried, finished after a job made later for the same bytes.
		const [first] = await insertJobs([
			{
				key,
				...done,
				caption: "Finished last.",
				created_at: at,
				updated_at: at + 2,
				completed_at: at + 2,
				write_back: "sidecar",
				write_back_status: "pending",
			},
			{ key, ...done, caption: "Finished first.", created_at: at + 1, updated_at: at + 1, completed_at: at + 1 },
		]);
		if (!first) throw new Error("jobs not inserted");
		await runConsumer([{ kind: "caption-job", job_id: first.id }]);
		expect(await (await env.BUCKET.get(key.replace(/\.png$/, ".txt")))?.text()).toBe("Finished last.");
	});

	it("no sidecar is written for a version replaced since its caption: the write-back fails, saying so", async () => {
		const key = uniqueKey("replaced-before-sidecar.png");
		const { eTag } = (await upload(key, await fixture("small.png"))).object;
		// The job as its finish left it, and then other bytes under the key.
		const job = await insertJob({
			key,
			etag: eTag ?? "",
			status: "succeeded",
			caption: "A small square.",
			completed_at: Date.now(),
			write_back: "sidecar",
			write_back_status: "pending",
		});
		await env.BUCKET.put(key, await fixture("small.jpg"));
		const { ids, result } = await runConsumer([{ kind: "caption-job", job_id: job.id }]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await env.BUCKET.head(key.replace(/\.png$/, ".txt"))).toBeNull();
		expect(toJob(await onlyJob(key)).write_back).toEqual({
			target: "sidecar",
			status: "failed",
			error: expect.stringContaining("changed since it was captioned"),
		});
	});

	it("a metadata write-back's echo that comes after the image was replaced makes no job either", async () => {
		const key = uniqueKey("echo-replaced.png");
		const { job, sent } = await captionAndRecord(key, { output: "title", "write-back": "metadata" });
		expect(sent).toHaveLength(1);
		// Other bytes under the key before the echo is read: the rewritten version, and its mark, are gone.
		await env.BUCKET.put(key, await fixture("small.jpg"));
		const echoesBefore = await counter("write_back_echoes");
		const { ids, result } = await runConsumer(sent);
		expect(result.explicitAcks).toEqual(ids);
		expect((await jobsForKey(key)).map((j) => j.id)).toEqual([job.id]);
		expect(await counter("write_back_echoes")).toBe(echoesBefore + 1);
		expect(await eventsFor([job.id])).toBe(1);
	});

	it("but a notification of that gone version that an upload's queued job waits for fails that job at once", async () => {
		const key = uniqueKey("echo-or-upload.png");
		const { job, sent } = await captionAndRecord(key, { output: "title", "write-back": "metadata" });
		// The same bytes uploaded again without caption headers: its job waits for the notification.
		const waiting = await insertJob({ key, etag: job.etag, source: "notification", options_key: "" });
		await env.BUCKET.put(key, await fixture("small.jpg"));
		const { ids, result } = await runConsumer(sent);
		expect(result.explicitAcks).toEqual(ids);
		expect((await jobsForKey(key)).find((j) => j.id === waiting.id)).toMatchObject({
			status: "failed",
			error_code: "object_not_found",
		});
	});

	it("a job by id for a sidecar-like key fails unsupported_media_type and leaves the object, image bytes or not", async () => {
		// A keys batch (or a job made before the API refused such keys) can name one: captioned with a
		// sidecar write-back, its sidecar would be itself, overwritten by its caption.
		const key = uniqueKey("photo.txt");
		const bytes = await fixture("small.jpg");
		await env.BUCKET.put(key, bytes, { customMetadata: { output: "tags", "write-back": "sidecar" } });
		const object = await env.BUCKET.head(key);
		const job = await insertJob({ key, etag: object?.etag ?? "" });
		const { ids, result } = await runConsumer([{ kind: "caption-job", job_id: job.id }]);
		expect(result.explicitAcks).toEqual(ids);
		expect(toJob(await onlyJob(key))).toMatchObject({
			status: "failed",
			error: { code: "unsupported_media_type", message: expect.stringContaining(".txt or .json") },
		});
		expect(emulator.callsTo()).toBe(0);
		expect(new Uint8Array(await ((await env.BUCKET.get(key))?.arrayBuffer() ?? new ArrayBuffer(0)))).toEqual(bytes);
	});

	it("a sidecar-like object a user puts in the bucket is not captioned as an image", async () => {
		const key = uniqueKey("notes.txt");
		const before = await counter("sidecar_objects");
		const { ids, result } = await runConsumer([await upload(key, "my own notes")]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toEqual([]);
		expect(await counter("sidecar_objects")).toBe(before + 1);
		expect(emulator.callsTo()).toBe(0);
	});
});

describe("a write-back left pending", () => {
	it("by a consumer that died after the job's finish is sent again by the sweep, and written once", async () => {
		const key = uniqueKey("left-pending.png");
		const { eTag: etag } = (await upload(key, await fixture("small.png"))).object;
		const old = Date.now() - 30 * 60_000;
		// The job as its finish left it: succeeded, its write-back pending, no delivery holding it.
		const job = await insertJob({
			key,
			etag: etag ?? "",
			status: "succeeded",
			caption: "A small square.",
			result: null,
			model: "@cf/moondream/moondream3.1-9B-A2B",
			attempts: 1,
			created_at: old,
			updated_at: old,
			started_at: old,
			completed_at: old,
			write_back: "sidecar",
			write_back_status: "pending",
		});
		const { queue, sent } = recordingQueue();
		const swept = await sweepStalledJobs({ ...env, CAPTION_JOBS: queue }, readSettings(env));
		expect(sent).toContainEqual({ kind: "caption-job", job_id: job.id });
		expect(swept.writeBacks).toBeGreaterThanOrEqual(1);
		const { ids, result } = await runConsumer(sent.filter((m) => JSON.stringify(m).includes(job.id)));
		expect(result.explicitAcks).toEqual(ids);
		expect(await (await env.BUCKET.get(key.replace(/\.png$/, ".txt")))?.text()).toBe("A small square.");
		expect(toJob(await onlyJob(key)).write_back).toEqual({ target: "sidecar", status: "written", error: null });
		expect(emulator.callsTo()).toBe(0);
		// Written: the next sweep has nothing of it to send.
		const again = recordingQueue();
		await sweepStalledJobs({ ...env, CAPTION_JOBS: again.queue }, readSettings(env));
		expect(again.sent).not.toContainEqual({ kind: "caption-job", job_id: job.id });
	});
});

describe("exactly once", () => {
	it("a transient R2 error is retried and the sidecar written once", async () => {
		const key = uniqueKey("flaky.png");
		const { bucket, puts } = countingBucket(env.BUCKET, 1);
		await runConsumer([await upload(key, await fixture("small.png"), { output: "tags", "write-back": "sidecar" })], {
			env: { BUCKET: bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		const sidecarKey = key.replace(/\.png$/, ".txt");
		expect(puts).toEqual([sidecarKey, sidecarKey]);
		expect(toJob(await onlyJob(key)).write_back).toMatchObject({ status: "written" });
		expect(await env.BUCKET.head(sidecarKey)).not.toBeNull();
	});

	it("a write-back that keeps failing is finished by a redelivery, which writes once; later redeliveries write nothing", async () => {
		const key = uniqueKey("redelivered.png");
		const notification = await upload(key, await fixture("small.png"), { output: "title", "write-back": "sidecar" });
		const down = countingBucket(env.BUCKET, 100);
		const first = await runConsumer([notification], {
			env: { BUCKET: down.bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		expect(first.result.retryMessages).toHaveLength(1);
		const job = await onlyJob(key);
		expect(job.status).toBe("succeeded");
		expect(toJob(job).write_back).toEqual({ target: "sidecar", status: "pending", error: null });
		expect(down.puts).toHaveLength(3);

		const up = countingBucket(env.BUCKET);
		for (const attempts of [2, 3, 4]) {
			const again = await runConsumer([notification], {
				attempts,
				env: { BUCKET: up.bucket, CAPTION_JOBS: recordingQueue().queue },
			});
			expect(again.result.explicitAcks).toEqual(again.ids);
		}
		expect(up.puts).toEqual([key.replace(/\.png$/, ".txt")]);
		expect(emulator.callsTo()).toBe(1);
		expect(await jobsForKey(key)).toHaveLength(1);
		expect(toJob(await onlyJob(key)).write_back).toEqual({ target: "sidecar", status: "written", error: null });
		expect(await eventsFor([job.id])).toBe(1);
	});

	it("on the last delivery a write-back that still fails is recorded as failed with the error", async () => {
		const key = uniqueKey("gave-up.png");
		const { bucket } = countingBucket(env.BUCKET, 100);
		await runConsumer([await upload(key, await fixture("small.png"), { "write-back": "sidecar" })], {
			attempts: 99,
			env: { BUCKET: bucket, CAPTION_JOBS: recordingQueue().queue },
		});
		const json = toJob(await onlyJob(key));
		expect(json.status).toBe("succeeded");
		expect(json.write_back).toMatchObject({ target: "sidecar", status: "failed" });
		expect(json.write_back?.error).toContain("internal error");
	});
});
