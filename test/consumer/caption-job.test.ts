import { beforeEach, describe, expect, it } from "vitest";
import { emulator } from "../../shared/models/emulator";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { onlyJob, runConsumer } from "../support/queue";

beforeEach(() => emulator.reset());

describe("caption jobs", () => {
	it("a PutObject notification becomes a succeeded job with an emulated caption", async () => {
		const key = uniqueKey("cat.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const { ids, result } = await runConsumer([notification]);
		expect(result.explicitAcks).toEqual(ids);
		const job = await onlyJob(key);
		expect(job).toMatchObject({
			status: "succeeded",
			content_type: "image/jpeg",
			model: "@cf/unum/uform-gen2-qwen-500m",
			prompt: "Generate a caption for this image",
			max_tokens: 512,
			attempts: 1,
			error_code: null,
		});
		expect(job.caption).toContain("a JPEG image, 64×48 pixels");
		expect(emulator.callsTo()).toBe(1);
	});
});
