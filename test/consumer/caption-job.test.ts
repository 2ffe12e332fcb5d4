import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { claimJobById } from "../../shared/jobs/store";
import { emulator } from "../../shared/models/emulator";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { insertJob } from "../support/jobs";
import { MOONDREAM, resetModels } from "../support/models";
import { until } from "../support/poll";
import { counter, jobsForKey, onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

describe("jobs from R2 notifications", () => {
	it("a PutObject notification becomes a succeeded job with an emulated caption", async () => {
		const key = uniqueKey("cat.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const { ids, result } = await runConsumer([notification]);
		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({
			source: "notification",
			status: "succeeded",
			etag: notification.object.eTag,
			content_type: "image/jpeg",
			model: MOONDREAM,
			prompt: "Generate a caption for this image",
			max_tokens: 512,
			attempts: 1,
			error_code: null,
			lease_token: null,
		});
		// The default prompt asks moondream for its caption skill, which takes no prompt.
		expect(job.caption).toBe(`Emulated caption (${MOONDREAM}): a JPEG image, 64×48 pixels.`);
		expect(job.completed_at).toBeGreaterThanOrEqual(job.started_at ?? Number.POSITIVE_INFINITY);
		expect(job.inference_ms).not.toBeNull();
		expect(emulator.callsTo()).toBe(1);
	});

	it("a job refers to its model's name, the default prompt, its content type and output kind, stored once; a custom prompt stays in its row", async () => {
		const plain = uniqueKey("plain.jpg");
		const custom = uniqueKey("custom.jpg");
		const jpeg = await fixture("small.jpg");
		await runConsumer([await upload(plain, jpeg), await upload(custom, jpeg, { prompt: `Is it ${custom}?` })]);
		const Stored = z.object({
			model: z.string().nullable(),
			prompt: z.string().nullable(),
			model_text: z.string().nullable(),
			prompt_text: z.string().nullable(),
		});
		const stored = (key: string) =>
			env.DB.prepare(
				`SELECT j.model, j.prompt, m.text AS model_text, p.text AS prompt_text FROM jobs j
				LEFT JOIN job_texts m ON m.id = j.model_id LEFT JOIN job_texts p ON p.id = j.prompt_id WHERE j.key = ?1
					AND j.content_type IS NULL AND j.output IS NULL
					AND (SELECT text FROM job_texts WHERE id = j.content_type_id) = 'image/jpeg'
					AND (SELECT text FROM job_texts WHERE id = j.output_id) = 'caption'`,
			)
				.bind(key)
				.first()
				.then(parseRow(Stored));
		expect(await stored(plain)).toEqual({
			model: null,
			prompt: null,
			model_text: MOONDREAM,
			prompt_text: "Generate a caption for this image",
		});
		expect(await stored(custom)).toEqual({
			model: null,
			prompt: `Is it ${custom}?`,
			model_text: MOONDREAM,
			prompt_text: null,
		});
		// Every read of the job gives the texts back.
		expect(await onlyJob(plain)).toMatchObject({
			model: MOONDREAM,
			prompt: "Generate a caption for this image",
			content_type: "image/jpeg",
			output: "caption",
		});
		expect(await onlyJob(custom)).toMatchObject({ model: MOONDREAM, prompt: `Is it ${custom}?` });
	});

	it.each(["CopyObject", "CompleteMultipartUpload"] as const)("%s makes a job too", async (action) => {
		const key = uniqueKey("copy.png");
		const notification = { ...(await upload(key, await fixture("small.png"))), action };
		await runConsumer([notification]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", content_type: "image/png" });
	});

	it.each(["DeleteObject", "LifecycleDeletion"] as const)("%s is acknowledged and makes no job", async (action) => {
		const key = uniqueKey("gone.jpg");
		const notification = { ...(await upload(key, await fixture("small.jpg"))), action };
		const { ids, result } = await runConsumer([notification]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toEqual([]);
		expect(emulator.callsTo()).toBe(0);
	});

	it("sniffs WebP and GIF from the bytes, whatever the key says", async () => {
		const webp = uniqueKey("really-a-webp.jpg");
		const gif = uniqueKey("no-extension");
		await runConsumer([await upload(webp, await fixture("small.webp")), await upload(gif, await fixture("small.gif"))]);
		expect(await onlyJob(webp)).toMatchObject({ status: "succeeded", content_type: "image/webp" });
		expect(await onlyJob(gif)).toMatchObject({ status: "succeeded", content_type: "image/gif" });
	});

	it("a JPEG followed by a video (a motion photo) and a PNG with bytes after IEND are captioned", async () => {
		const video = new Uint8Array(200_000).map((_, i) => (i * 31 + 7) & 0xff);
		video.set([0, 0, 0, 0x18, ...new TextEncoder().encode("ftypmp42")]);
		const withTrailer = (image: Uint8Array) => {
			const bytes = new Uint8Array(image.length + video.length);
			bytes.set(image);
			bytes.set(video, image.length);
			return bytes;
		};
		const motion = uniqueKey("motion.jpg");
		const png = uniqueKey("trailing.png");
		await runConsumer([
			await upload(motion, withTrailer(await fixture("small.jpg"))),
			await upload(png, withTrailer(await fixture("small.png"))),
		]);
		expect(await onlyJob(motion)).toMatchObject({ status: "succeeded", content_type: "image/jpeg" });
		expect(await onlyJob(png)).toMatchObject({ status: "succeeded", content_type: "image/png" });
	});

	it("takes the prompt and max tokens from the object's custom metadata", async () => {
		const key = uniqueKey("question.jpg");
		const notification = await upload(key, await fixture("small.jpg"), {
			prompt: "What colour is the background?",
			"max-tokens": "64",
		});
		await runConsumer([notification]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "succeeded", prompt: "What colour is the background?", max_tokens: 64 });
		expect(job.caption).toContain('Prompt: "What colour is the background?"');
	});

	it.each([
		[{ "max-tokens": "many" }, /max-tokens/],
		[{ "max-tokens": "100000" }, /max-tokens/],
		[{ prompt: "   " }, /prompt/],
		[{ "callback-url": "not a url" }, /callback-url/],
	])("invalid metadata %o fails the job with invalid_options and no model call", async (metadata, message) => {
		const key = uniqueKey("bad-options.jpg");
		const { ids, result } = await runConsumer([await upload(key, await fixture("small.jpg"), metadata)]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_options" });
		expect(job.error_message).toMatch(message);
		expect(emulator.callsTo()).toBe(0);
	});
});

describe("objects that cannot be captioned fail with a stable code, without retries or model calls", () => {
	const cases: [string, () => Promise<Uint8Array | string>, string][] = [
		["an empty object", async () => "", "empty_object"],
		["a text file", async () => "hello, this is not an image", "unsupported_media_type"],
		["a PDF named .jpg", async () => "%PDF-1.7\n1 0 obj << >> endobj", "unsupported_media_type"],
		["a truncated JPEG", async () => (await fixture("small.jpg")).slice(0, 200), "invalid_image"],
		["a truncated PNG", async () => (await fixture("small.png")).slice(0, 60), "invalid_image"],
		["a JPEG header with no frame", async () => new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), "invalid_image"],
	];
	it.each(cases)("%s", async (_name, body, code) => {
		const key = uniqueKey("broken.jpg");
		const { ids, result } = await runConsumer([await upload(key, await body())]);
		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: code });
		expect(emulator.callsTo()).toBe(0);
	});

	it("an object over MAX_OBJECT_BYTES fails with image_too_large", async () => {
		const key = uniqueKey("huge.jpg");
		await runConsumer([await upload(key, await fixture("small.jpg"))], { env: { MAX_OBJECT_BYTES: "100" } });
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "image_too_large" });
		expect(job.error_message).toContain("the limit is 100");
	});

	it("a notification for an object deleted since fails with object_not_found", async () => {
		const key = uniqueKey("deleted.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await env.BUCKET.delete(key);
		const { ids, result } = await runConsumer([notification]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "object_not_found" });
		expect(job.error_message).toContain("no longer exists");
	});

	it("a notification for a version since overwritten fails with object_not_found; the new version succeeds", async () => {
		const key = uniqueKey("overwritten.jpg");
		const first = await upload(key, await fixture("small.jpg"));
		const second = await upload(key, await fixture("small.png"));
		await runConsumer([first, second]);
		const jobs = await jobsForKey(key);
		const byEtag = new Map(jobs.map((j) => [j.etag, j]));
		expect(byEtag.get(first.object.eTag ?? "")).toMatchObject({ status: "failed", error_code: "object_not_found" });
		expect(byEtag.get(second.object.eTag ?? "")).toMatchObject({ status: "succeeded", content_type: "image/png" });
	});
});

describe("at-least-once delivery", () => {
	it("a duplicate notification (same etag) does not make a second job or call the model again", async () => {
		const key = uniqueKey("dup.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await runConsumer([notification]);
		const { ids, result } = await runConsumer([notification, structuredClone(notification)]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toHaveLength(1);
		expect(emulator.callsTo()).toBe(1);
	});

	it("duplicates inside one batch make one job and one model call; the other copies come back after the lease", async () => {
		// The model takes a while, so the first copy is still captioning when the other two claim.
		emulator.overrides.latencyMs = 300;
		const key = uniqueKey("dup-batch.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const { result, retryDelays } = await runConsumer([notification, notification, notification]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", attempts: 1 });
		expect(emulator.callsTo()).toBe(1);
		expect(result.explicitAcks).toHaveLength(1);
		expect(result.retryMessages).toHaveLength(2);
		// Back one second after the lease (LEASE_SECONDS = 120 in the test config) ends, not before.
		const lease = Number(env.LEASE_SECONDS);
		for (const retry of result.retryMessages) {
			expect(retryDelays.get(retry.msgId)).toBeGreaterThanOrEqual(lease);
			expect(retryDelays.get(retry.msgId)).toBeLessThanOrEqual(lease + 1);
		}
	});

	it("a finish after the job's lease was lost writes nothing", async () => {
		emulator.overrides.latencyMs = 500;
		const key = uniqueKey("lease-lost.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const run = runConsumer([notification]);
		// While the model runs, the lease runs out and another consumer claims the job.
		const claimed = await until("the job was claimed", async () => {
			const [job] = await jobsForKey(key);
			return job?.status === "processing" ? job : undefined;
		});
		await env.DB.prepare("UPDATE jobs SET lease_expires_at = ?2 WHERE id = ?1")
			.bind(claimed.id, Date.now() - 1)
			.run();
		const now = Date.now();
		const other = await claimJobById(env.DB, claimed.id, { token: "another-consumer", now, expiresAt: now + 60_000 });
		expect(other.kind).toBe("claimed");

		const { ids, result } = await run;
		expect(result.explicitAcks).toEqual(ids);
		expect(emulator.callsTo()).toBe(1);
		expect(await onlyJob(key)).toMatchObject({
			status: "processing",
			lease_token: "another-consumer",
			attempts: 2,
			caption: null,
			model: null,
			content_type: null,
			inference_ms: null,
			completed_at: null,
		});
		const events = await env.DB.prepare(`SELECT count(*) AS n FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
			.bind(claimed.id)
			.first("n");
		expect(events).toBe(0);
	});

	it("a job whose lease expired (its consumer died) is claimed again by the redelivered message", async () => {
		const key = uniqueKey("abandoned.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const past = Date.now() - 60_000;
		await insertJob({
			key,
			source: "notification",
			etag: notification.object.eTag ?? "",
			size: 0,
			status: "processing",
			attempts: 1,
			lease_token: "dead-consumer",
			lease_expires_at: past,
			created_at: past,
			started_at: past,
		});
		await runConsumer([notification], { attempts: 2 });
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", attempts: 2, lease_token: null });
	});

	it("malformed messages mixed into a batch are acknowledged and counted; the valid ones succeed", async () => {
		const key = uniqueKey("valid.jpg");
		const valid = await upload(key, await fixture("small.jpg"));
		const before = await counter("invalid_messages");
		const { ids, result } = await runConsumer([
			"not json at all",
			{ action: "PutObject" },
			valid,
			{ ...valid, object: { key: "x.jpg", size: 1 } },
			{ kind: "caption-job", job_id: "job_does_not_exist" },
			null,
		]);
		expect(result.explicitAcks.sort()).toEqual([...ids].sort());
		expect(result.retryMessages).toEqual([]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded" });
		expect((await counter("invalid_messages")) - before).toBe(5);
	});
});
