import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { countingD1 } from "../support/d1-writes";
import { fixture, uniqueKey, upload, withExtendedXmp } from "../support/fixtures";
import { imagesFailing } from "../support/images";
import { GEMMA, LLAVA, MOONDREAM, resetModels, SCOUT, UFORM, warmUp } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

async function smallJpeg(name = "photo.jpg") {
	const key = uniqueKey(name);
	return { key, notification: await upload(key, await fixture("small.jpg")) };
}

describe("transient model errors are retried with backoff", () => {
	// A model that has answered before: its failures count toward its circuit, one at a time.
	beforeEach(() => warmUp());

	it.each([3040, 3007, "network"] as const)("%s: the message is retried, the job goes back to queued", async (code) => {
		emulator.inject({ code, times: 1 });
		const { key, notification } = await smallJpeg();
		const { ids, result, retryDelays } = await runConsumer([notification], {
			env: { RETRY_BASE_SECONDS: "4", RETRY_MAX_SECONDS: "300" },
		});
		expect(result.retryMessages.map((r) => r.msgId)).toEqual(ids);
		// First attempt: between half and all of the 4 s base.
		expect(retryDelays.get(ids[0] ?? "")).toBeGreaterThanOrEqual(2);
		expect(retryDelays.get(ids[0] ?? "")).toBeLessThanOrEqual(4);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "queued", attempts: 1, lease_token: null, error_code: null });
		// When its message comes back, so that the stalled-job sweep leaves it to that message.
		const back = (job.lease_expires_at ?? 0) - job.updated_at;
		expect(back).toBe((retryDelays.get(ids[0] ?? "") ?? -1) * 1000);
	});

	it("a transient error then success: the redelivered message captions the same job", async () => {
		emulator.inject({ code: 3040, times: 1 });
		const { key, notification } = await smallJpeg();
		await runConsumer([notification], { attempts: 1 });
		const { ids, result } = await runConsumer([notification], { attempts: 2 });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", attempts: 2, model: MOONDREAM });
		expect(emulator.calls.map((c) => c.ok)).toEqual([false, true]);
	});

	it("a rate-limited call (3021) waits at least 10 seconds", async () => {
		emulator.inject({ code: 3021, times: 1 });
		const { notification } = await smallJpeg();
		const { ids, retryDelays } = await runConsumer([notification]);
		expect(retryDelays.get(ids[0] ?? "")).toBeGreaterThanOrEqual(10);
	});

	it("the last delivery fails the job with retries_exhausted instead of retrying", async () => {
		emulator.inject({ code: 3040, times: 5 });
		const { key, notification } = await smallJpeg();
		// CAPTION_MAX_RETRIES is 2 in the test config: delivery 3 is the last.
		const { ids, result } = await runConsumer([notification], { attempts: 3 });
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
		expect(job.error_message).toContain("3040");
	});
});

describe("model errors about the request", () => {
	beforeEach(() => warmUp());

	it.each([5004, 5006, 3003])(
		"%s (the request is invalid) fails the job with model_error, without a retry",
		async (code) => {
			emulator.inject({ code, times: 1 });
			const { key, notification } = await smallJpeg();
			const { ids, result } = await runConsumer([notification]);
			expect(result.explicitAcks).toEqual(ids);
			expect(result.retryMessages).toEqual([]);
			const job = await onlyJob(key);
			expect(job).toMatchObject({ status: "failed", error_code: "model_error" });
			expect(job.error_message).toContain(String(code));
			expect(emulator.callsTo()).toBe(1);
		},
	);

	it("3006 (request too large) moves to the next model instead of failing the job", async () => {
		emulator.inject({ model: MOONDREAM, code: 3006, times: 1 });
		const { key, notification } = await smallJpeg();
		await runConsumer([notification]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: LLAVA });
		expect(emulator.calls.map((c) => [c.model, c.code])).toEqual([
			[MOONDREAM, 3006],
			[LLAVA, null],
		]);
	});

	it("3006 from every model fails the job with image_too_large", async () => {
		await warmUp(LLAVA);
		emulator.inject({ code: 3006, times: 2 });
		const { key, notification } = await smallJpeg();
		const { result } = await runConsumer([notification], { env: { MODEL_CHAIN: `${MOONDREAM},${LLAVA}` } });
		expect(result.retryMessages).toEqual([]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "image_too_large" });
		expect(job.error_message).toContain("3006");
	});

	it("an empty caption is an error, not a success", async () => {
		emulator.inject({ code: "empty", times: 1 });
		const { key, notification } = await smallJpeg();
		await runConsumer([notification]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "model_error", caption: null });
		expect(job.error_message).toContain("empty caption");
	});
});

describe("fallback chain", () => {
	it("when the first model is gone (5007) the next one captions, and the job records it", async () => {
		emulator.overrides.goneModels = new Set([MOONDREAM]);
		const { key, notification } = await smallJpeg();
		await runConsumer([notification]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "succeeded", model: LLAVA });
		expect(job.caption).toContain(`Emulated caption (${LLAVA})`);
	});

	it("a gone model is remembered beyond the batch: called once, not once per message or per batch", async () => {
		emulator.overrides.goneModels = new Set([MOONDREAM]);
		for (let batch = 0; batch < 2; batch++) {
			const uploads = await Promise.all([1, 2, 3].map(() => smallJpeg()));
			await runConsumer(
				uploads.map((u) => u.notification),
				{ env: { CAPTION_CONCURRENCY: "1" } },
			);
			for (const u of uploads) expect(await onlyJob(u.key)).toMatchObject({ status: "succeeded", model: LLAVA });
		}
		expect(emulator.callsTo(MOONDREAM)).toBe(1);
		expect(emulator.callsTo(LLAVA)).toBe(6);
	});

	it("3042 (invalid model id) also moves on; chat models get a data: URL and answer in their own shape", async () => {
		emulator.overrides.retiredModels = new Set();
		emulator.inject({ model: UFORM, code: 3042, times: 1 });
		const { key, notification } = await smallJpeg();
		await runConsumer([notification], { env: { MODEL_CHAIN: `${UFORM},${SCOUT}` } });
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: SCOUT });
		const gemma = await smallJpeg();
		await runConsumer([gemma.notification], { env: { MODEL_CHAIN: GEMMA } });
		const job = await onlyJob(gemma.key);
		expect(job).toMatchObject({ status: "succeeded", model: GEMMA });
		expect(job.caption).toContain("a JPEG image, 64×48 pixels");
	});

	it("when every model in the chain is gone the job fails with model_unavailable", async () => {
		emulator.overrides.goneModels = new Set([MOONDREAM, LLAVA]);
		const { key, notification } = await smallJpeg();
		const { result } = await runConsumer([notification], { env: { MODEL_CHAIN: `${MOONDREAM},${LLAVA}` } });
		expect(result.retryMessages).toEqual([]);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "model_unavailable" });
	});
});

describe("large images", () => {
	it("a 6000×4000 JPEG is downscaled with the Images binding before inference and captioned", async () => {
		const bytes = await fixture("large-6000x4000.jpg");
		expect(bytes.length).toBeGreaterThan(4 * 1024 * 1024);
		const key = uniqueKey("huge-photo.jpg");
		await runConsumer([await upload(key, bytes)]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "succeeded", content_type: "image/jpeg", model: MOONDREAM });
		// The model saw the downscaled image: longest side 1024 (moondream's limit), aspect ratio kept.
		expect(job.caption).toContain("a JPEG image, 1024×683 pixels");
	});

	it("an image small in bytes but too wide is downscaled too", async () => {
		const key = uniqueKey("panorama.jpg");
		await runConsumer([await upload(key, await fixture("wide-2000x1000.jpg"))]);
		expect((await onlyJob(key)).caption).toContain("1024×512 pixels");
	});

	it("a JPEG over 4 MiB whose metadata segments run past the first 256 KiB is captioned; cut inside them, invalid_image", async () => {
		// Its dimensions come after 4.5 MB of extended XMP, as a camera's depth map puts them.
		const bytes = withExtendedXmp(await fixture("wide-2000x1000.jpg"), 4_500_000);
		expect(bytes.length).toBeGreaterThan(4 * 1024 * 1024);
		const key = uniqueKey("depth-map.jpg");
		const cut = uniqueKey("depth-map-cut.jpg");
		await runConsumer([await upload(key, bytes), await upload(cut, bytes.slice(0, 4_400_000))]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "succeeded", content_type: "image/jpeg", model: MOONDREAM });
		expect(job.caption).toContain("a JPEG image, 1024×512 pixels");
		const failed = await onlyJob(cut);
		expect(failed).toMatchObject({ status: "failed", error_code: "invalid_image" });
		expect(failed.error_message).toContain("header is damaged or incomplete");
		expect(emulator.callsTo()).toBe(1);
	});

	it("an Images service error (9522) is retried: the job goes back to the queue, the next delivery captions it", async () => {
		const key = uniqueKey("huge-flaky.jpg");
		const notification = await upload(key, await fixture("large-6000x4000.jpg"));
		const images = imagesFailing(env.IMAGES, 9522, 1);
		const first = await runConsumer([notification], { env: { IMAGES: images } });
		expect(first.result.retryMessages.map((r) => r.msgId)).toEqual(first.ids);
		expect(await onlyJob(key)).toMatchObject({ status: "queued", error_code: null, lease_token: null });
		expect(emulator.callsTo()).toBe(0);
		const second = await runConsumer([notification], { attempts: 2, env: { IMAGES: images } });
		expect(second.result.explicitAcks).toEqual(second.ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", attempts: 2, model: MOONDREAM });
	});

	it("an image the Images binding cannot decode fails with invalid_image on its second attempt, without a model call", async () => {
		// Over 4 MiB, so the Worker reads only its header: the dimensions are there, the pixels are noise.
		const damaged = (await fixture("large-6000x4000.jpg")).slice();
		damaged.fill(7, 4096);
		const key = uniqueKey("damaged.jpg");
		const notification = await upload(key, damaged);
		// Local mode reports it as 9523, which the platform also uses for internal errors: retried once.
		const first = await runConsumer([notification]);
		expect(first.result.retryMessages.map((r) => r.msgId)).toEqual(first.ids);
		const { ids, result } = await runConsumer([notification], { attempts: 2 });
		expect(result.explicitAcks).toEqual(ids);
		expect(result.retryMessages).toEqual([]);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "invalid_image" });
		expect(job.error_message).toContain("could not be decoded");
		expect(emulator.callsTo()).toBe(0);
	});

	it("a probe admitted for an image that could not be prepared is handed back: the next batch probes at once", async () => {
		// After the reset every model is half-open: the large image's job is admitted as the probe of
		// the first model, then its preparation fails (9412: not decodable) before any call.
		const damagedKey = uniqueKey("damaged-probe.jpg");
		await runConsumer([await upload(damagedKey, await fixture("large-6000x4000.jpg"))], {
			env: { IMAGES: imagesFailing(env.IMAGES, 9412, 1) },
		});
		expect(await onlyJob(damagedKey)).toMatchObject({ status: "failed", error_code: "invalid_image" });
		expect(emulator.callsTo()).toBe(0);

		// Another batch: the probe is free again, so it calls the first model now instead of waiting
		// for the abandoned probe's outcome and moving on to the next model.
		const { key, notification } = await smallJpeg();
		await runConsumer([notification]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: MOONDREAM });
		expect(emulator.calls.map((c) => c.model)).toEqual([MOONDREAM]);
	});

	it("an image over 100 megapixels fails with image_too_large without being decoded", async () => {
		// A PNG header declaring 20000×20000 pixels: refused from the header alone.
		const png = new Uint8Array(await fixture("small.png"));
		const view = new DataView(png.buffer);
		view.setUint32(16, 20000);
		view.setUint32(20, 20000);
		const key = uniqueKey("bomb.png");
		await runConsumer([await upload(key, png)], {});
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "image_too_large" });
		expect(emulator.callsTo()).toBe(0);
	});
});

describe("batches", () => {
	beforeEach(() => warmUp());

	it("the messages of a batch are captioned concurrently, up to CAPTION_CONCURRENCY", async () => {
		emulator.overrides.latencyMs = 200;
		const uploads = await Promise.all(Array.from({ length: 10 }, () => smallJpeg()));
		const { result } = await runConsumer(uploads.map((u) => u.notification));
		expect(result.explicitAcks).toHaveLength(10);
		expect(emulator.maxInFlight).toBe(10);
		emulator.reset();
		emulator.overrides.latencyMs = 50;
		const more = await Promise.all(Array.from({ length: 6 }, () => smallJpeg()));
		await runConsumer(
			more.map((u) => u.notification),
			{ env: { CAPTION_CONCURRENCY: "3" } },
		);
		expect(emulator.maxInFlight).toBe(3);
	});

	it("a caption costs two D1 writes: the claim (one batch: the object version's job claimed, else made) and the finish (one batch with its webhook event and its batch's settle check)", async () => {
		const { key, notification } = await smallJpeg();
		const { db, writes } = countingD1(env.DB);
		await runConsumer([notification], { env: { DB: db } });
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded" });
		expect(writes).toEqual([
			// The claim's and the finish's counters (WITH … UPDATE job_counts / INSERT INTO job_completions)
			// come first in each, and the claim and finish mark the job as counted (shared/jobs/batched-counts.ts).
			"UPDATE jobs SET + INSERT INTO jobs",
			"UPDATE jobs SET + INSERT INTO webhook_events + UPDATE batches SET + INSERT INTO webhook_events",
		]);
	});
});
