/**
 * Images binding errors as the platform documents them (shared/image/images-errors.ts): the
 * binding's 20 MB input limit is kept before any call, a 9523 is retried once before the image is
 * blamed, and an account refusal (9422, 9432) fails the job after one short hold.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { IMAGES_MAX_INPUT_BYTES } from "../../shared/image/images-errors";
import { TransientError } from "../../shared/jobs/errors";
import { emulator } from "../../shared/models/emulator";
import { ACCOUNT_HOLD_SECONDS, imagesFailure } from "../../workers/consumer/prepare-image";
import { bmp, fixture, uniqueKey, upload } from "../support/fixtures";
import { imagesFailing, imagesWithInputLimit } from "../support/images";
import { resetModels, SCOUT } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

describe("the Images binding's 20 MB input limit", () => {
	it("an object over it fails with image_too_large before any Images or model call, even under a larger MAX_OBJECT_BYTES", async () => {
		// A real JPEG header (6000×4000) and enough bytes after it to pass the limit by one.
		const large = await fixture("large-6000x4000.jpg");
		const bytes = new Uint8Array(IMAGES_MAX_INPUT_BYTES + 1);
		bytes.set(large);
		const key = uniqueKey("over-20mb.jpg");
		// The binding as the service takes it, counting what it is given.
		const images = imagesWithInputLimit(env.IMAGES);
		const { ids, result } = await runConsumer([await upload(key, bytes)], {
			env: { IMAGES: images, MAX_OBJECT_BYTES: String(50 * 1024 * 1024) },
		});
		expect(result.retryMessages).toEqual([]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "image_too_large" });
		expect(job.error_message).toContain(`at most ${IMAGES_MAX_INPUT_BYTES} bytes`);
		expect(images.inputs).toBe(0);
		expect(emulator.callsTo()).toBe(0);
	});

	it("MAX_OBJECT_BYTES defaults to the same limit", async () => {
		const { readSettings } = await import("../../workers/consumer/config");
		const unset = { ...env, MAX_OBJECT_BYTES: undefined } as unknown as ConsumerEnv;
		expect(readSettings(unset).MAX_OBJECT_BYTES).toBe(IMAGES_MAX_INPUT_BYTES);
	});
});

describe("BMP, which the Images binding does not read", () => {
	it("a BMP over the first models' limit goes on to the first model that takes it as it is, with no Images call", async () => {
		const key = uniqueKey("over-first.bmp");
		// 630,054 bytes: over the 512 KiB of moondream and llava, within the chat models' 1 MiB.
		const images = imagesWithInputLimit(env.IMAGES);
		const { ids, result } = await runConsumer([await upload(key, bmp(500, 420))], { env: { IMAGES: images } });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", model: SCOUT, attempts: 1 });
		expect(images.inputs).toBe(0);
		expect(emulator.callsTo()).toBe(1);
	});

	it("a BMP over every model's input limit fails image_too_large at once, saying to convert it, with no Images or model call", async () => {
		const key = uniqueKey("over-limit.bmp");
		const bytes = bmp(700, 600); // 1,260,054 bytes: over every model's limit (1 MiB at most)
		const images = imagesWithInputLimit(env.IMAGES);
		const { ids, result } = await runConsumer([await upload(key, bytes)], { env: { IMAGES: images } });
		expect(result.retryMessages).toEqual([]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ status: "failed", error_code: "image_too_large", attempts: 1 });
		expect(job.error_message).toContain("BMP");
		expect(job.error_message).toContain("convert it to PNG or JPEG");
		expect(images.inputs).toBe(0);
		expect(emulator.callsTo()).toBe(0);
	});

	it("a BMP within the limit is captioned as it is", async () => {
		const key = uniqueKey("small.bmp");
		await runConsumer([await upload(key, bmp(64, 48))]);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded" });
	});
});

describe("Images errors that are not plainly the image's fault", () => {
	it("a 9523 is retried once; the job is captioned when the next delivery's resize works", async () => {
		const key = uniqueKey("flaky-9523.jpg");
		const notification = await upload(key, await fixture("large-6000x4000.jpg"));
		const images = imagesFailing(env.IMAGES, 9523, 1);
		const first = await runConsumer([notification], { env: { IMAGES: images } });
		expect(first.result.retryMessages.map((r) => r.msgId)).toEqual(first.ids);
		expect(await onlyJob(key)).toMatchObject({ status: "queued", error_code: null });
		const second = await runConsumer([notification], { attempts: 2, env: { IMAGES: images } });
		expect(second.result.explicitAcks).toEqual(second.ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", attempts: 2 });
	});

	it("a second 9523 for the same job blames the image: invalid_image, no model call", async () => {
		const key = uniqueKey("bad-9523.jpg");
		const notification = await upload(key, await fixture("large-6000x4000.jpg"));
		const images = imagesFailing(env.IMAGES, 9523, 2);
		await runConsumer([notification], { env: { IMAGES: images } });
		const second = await runConsumer([notification], { attempts: 2, env: { IMAGES: images } });
		expect(second.result.retryMessages).toEqual([]);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "invalid_image", attempts: 2 });
		expect(emulator.callsTo()).toBe(0);
	});

	it.each([9422, 9432])(
		"%s (usage limit or plan) holds the job for a minute once, then fails it with images_account_limit",
		async (code) => {
			const key = uniqueKey(`account-${code}.jpg`);
			const notification = await upload(key, await fixture("large-6000x4000.jpg"));
			const images = imagesFailing(env.IMAGES, code, 2);
			const first = await runConsumer([notification], { env: { IMAGES: images } });
			expect(first.result.retryMessages.map((r) => r.msgId)).toEqual(first.ids);
			expect(await onlyJob(key)).toMatchObject({ status: "queued", error_code: null });
			// The hold: the retry asks for at least a minute (the queue result does not show delays).
			const held = imagesFailure(Object.assign(new Error("limit"), { code }), false);
			expect(held).toBeInstanceOf(TransientError);
			expect(held instanceof TransientError && held.minDelaySeconds).toBe(ACCOUNT_HOLD_SECONDS);
			const second = await runConsumer([notification], { attempts: 2, env: { IMAGES: images } });
			expect(second.result.explicitAcks).toEqual(second.ids);
			const job = await onlyJob(key);
			expect(job).toMatchObject({ status: "failed", error_code: "images_account_limit", attempts: 2 });
			expect(job.error_message).toContain(String(code));
			expect(emulator.callsTo()).toBe(0);
		},
	);
});
