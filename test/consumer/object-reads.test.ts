/**
 * What a notification costs in R2 operations: its object version is opened once, before the
 * claim, and that one `get` gives both the options key (from the custom metadata) and the image.
 * The only stand-in counts the calls that reach the real bucket binding.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { optionsKey } from "../../shared/jobs/options";
import { ensureNotificationJob } from "../../workers/status/jobs/create";
import { call, parsed } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { resetModels } from "../support/models";
import { until } from "../support/poll";
import { jobsForKey, onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

/** The object's current caption, as `GET /v1/captions/{key}` answers it. */
async function currentCaption(key: string) {
	const Caption = z.object({ etag: z.string(), text: z.string(), source: z.string(), job_id: z.string().nullable() });
	return parsed(await call("GET", `/v1/captions/${key}`), Caption);
}

/** The test's bucket binding, recording each method called on it. */
function countedBucket() {
	const calls: string[] = [];
	const bucket = new Proxy(env.BUCKET, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function" || typeof prop !== "string") return value;
			return (...args: unknown[]) => {
				calls.push(prop);
				return Reflect.apply(value, target, args);
			};
		},
	});
	return { bucket, calls };
}

describe("a notification's object", () => {
	it("is opened once: one get, no head, and the job has the options of the object's metadata", async () => {
		const key = uniqueKey("opened-once.jpg");
		const notification = await upload(key, await fixture("small.jpg"), { prompt: "Which animal is it?" });
		const { bucket, calls } = countedBucket();
		const { ids, result } = await runConsumer([notification], { env: { BUCKET: bucket } });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded", prompt: "Which animal is it?" });
		expect(calls).toEqual(["get"]);
	});

	it("replaced since its notification: its job fails with object_not_found", async () => {
		const key = uniqueKey("replaced.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		await env.BUCKET.put(key, "not the notified version");
		const { bucket } = countedBucket();
		const { ids, result } = await runConsumer([notification], { env: { BUCKET: bucket } });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "failed", error_code: "object_not_found" });
	});

	it("uploaded with caption options, then replaced before its notification: the upload's job fails, no other is made", async () => {
		const key = uniqueKey("replaced-options.jpg");
		const metadata = { prompt: "Which animal is it?" };
		const notification = await upload(key, await fixture("small.jpg"), metadata);
		// The job PUT /v1/images made for that version and its options (workers/status/jobs/create.ts).
		const { row } = await ensureNotificationJob(env.DB, {
			bucket: "images",
			key,
			etag: notification.object.eTag ?? "",
			size: notification.object.size ?? null,
			contentType: "image/jpeg",
			prompt: metadata.prompt,
			maxTokens: null,
			callbackUrl: null,
			keyId: null,
			optionsKey: await optionsKey(metadata),
		});
		await env.BUCKET.put(key, "not the notified version");
		const { ids, result } = await runConsumer([notification]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ id: row.id, status: "failed", error_code: "object_not_found" });
	});

	it("written again after its job failed object_not_found (A, B over it, A again): the new write's notification makes one job that captions it", async () => {
		const key = uniqueKey("written-again.jpg");
		const jpeg = await fixture("small.jpg");
		// No caption metadata: the failed job and the new write's notification have the same options key ('').
		const notification = await upload(key, jpeg);
		await env.BUCKET.put(key, "not the notified version");
		await runConsumer([notification]);
		const failed = await onlyJob(key);
		expect(failed).toMatchObject({ status: "failed", error_code: "object_not_found" });
		// A again (the same bytes: the same etag), notified twice, in one batch.
		const again = await upload(key, jpeg);
		expect(again.object.eTag).toBe(notification.object.eTag);
		const { ids, result } = await runConsumer([again, again]);
		expect(result.explicitAcks).toEqual(ids);
		const made = await until("the new job did not finish", async () => {
			const rows = await jobsForKey(key);
			const last = rows.at(-1);
			return rows.length === 2 && last?.status === "succeeded" ? rows : undefined;
		});
		expect(made.map((r) => [r.id, r.source, r.status])).toEqual([
			[failed.id, "notification", "failed"],
			[made[1]?.id, "api", "succeeded"],
		]);
		expect(made[1]?.etag).toBe(notification.object.eTag);
		// A notification of it once more (a late duplicate): the job made stands, nothing new.
		await runConsumer([again]);
		expect(await jobsForKey(key)).toHaveLength(2);
	});

	it("written again after another version was captioned over it (A, B, A): the new write's notification makes one job, whose caption of A is current", async () => {
		const key = uniqueKey("restored.png");
		const png = await fixture("small.png");
		const jpeg = await fixture("small.jpg");
		// With caption metadata: the new job is captioned with the version's own (its options key's).
		const metadata = { prompt: "What is in it?" };
		const a = await upload(key, png, metadata);
		await runConsumer([a]);
		const b = await upload(key, jpeg, metadata);
		await runConsumer([b]);
		expect(await currentCaption(key)).toMatchObject({ etag: b.object.eTag, text: expect.stringContaining("JPEG") });
		// A again (the same etag and options key), notified twice in one batch.
		const again = await upload(key, png, metadata);
		expect(again.object.eTag).toBe(a.object.eTag);
		const { ids, result } = await runConsumer([again, again]);
		expect(result.explicitAcks).toEqual(ids);
		const rows = await until("the new job did not finish", async () => {
			const all = await jobsForKey(key);
			return all.length === 3 && all[2]?.status === "succeeded" ? all : undefined;
		});
		const [jobA, jobB, restored] = rows;
		expect(rows.map((r) => [r.source, r.status, r.etag])).toEqual([
			["notification", "succeeded", a.object.eTag],
			["notification", "succeeded", b.object.eTag],
			["api", "succeeded", a.object.eTag],
		]);
		expect(restored).toMatchObject({ prompt: "What is in it?", options_key: jobA?.options_key });
		expect(await currentCaption(key)).toMatchObject({
			etag: a.object.eTag,
			job_id: restored?.id,
			text: expect.stringContaining("PNG"),
		});
		// Late duplicates of A's first write and of this one: the caption of A is current, nothing new.
		await runConsumer([a, again]);
		expect((await jobsForKey(key)).map((r) => r.id)).toEqual([jobA?.id, jobB?.id, restored?.id]);
	});

	it("written again after its job failed and another version was captioned (A fails, B, A): one new job, not one per duplicate", async () => {
		const key = uniqueKey("restored-failed.png");
		// Not an image: its job fails unsupported_media_type, without a model call.
		const a = await upload(key, "not an image");
		await runConsumer([a]);
		const b = await upload(key, await fixture("small.jpg"));
		await runConsumer([b]);
		const again = await upload(key, "not an image");
		await runConsumer([again]);
		const rows = await until("the new job did not finish", async () => {
			const all = await jobsForKey(key);
			return all.length === 3 && all[2]?.status === "failed" ? all : undefined;
		});
		expect(rows.map((r) => [r.source, r.status, r.error_code, r.etag])).toEqual([
			["notification", "failed", "unsupported_media_type", a.object.eTag],
			["notification", "succeeded", null, b.object.eTag],
			["api", "failed", "unsupported_media_type", a.object.eTag],
		]);
		// Duplicates of the write: the new job failed since B's caption was made, so it stands.
		const { ids, result } = await runConsumer([again, again]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toHaveLength(3);
	});

	it("written again while a person's caption is current (A, B, a human caption, A): no job, the human caption stays", async () => {
		const key = uniqueKey("restored-human.png");
		const png = await fixture("small.png");
		const a = await upload(key, png);
		await runConsumer([a]);
		await runConsumer([await upload(key, await fixture("small.jpg"))]);
		const res = await call("PUT", `/v1/captions/${key}`, { json: { text: "A person's words." } });
		expect(res.status).toBe(200);
		const again = await upload(key, png);
		const { ids, result } = await runConsumer([again]);
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toHaveLength(2);
		expect(await currentCaption(key)).toMatchObject({ source: "human", text: "A person's words." });
	});

	it("is read while the batch's claim is written, not after: its bytes are in before the claim's answer", async () => {
		const key = uniqueKey("read-ahead.jpg");
		const notification = await upload(key, await fixture("small.jpg"));
		const order: string[] = [];
		// The body, telling when it has been read to its end.
		const bucket = new Proxy(env.BUCKET, {
			get(target, prop) {
				if (prop !== "get") return Reflect.get(target, prop, target);
				return async (...args: Parameters<R2Bucket["get"]>) => {
					const object = await target.get(...args);
					if (object === null || !("body" in object)) return object;
					const reader = object.body.getReader();
					const body = new ReadableStream<Uint8Array>({
						async pull(controller) {
							const { done, value } = await reader.read();
							if (done) {
								order.push("image read");
								controller.close();
							} else controller.enqueue(value);
						},
					});
					return new Proxy(object, { get: (o, p) => (p === "body" ? body : Reflect.get(o, p, o)) });
				};
			},
		});
		// D1 answering the claim's transaction 300 ms late, as a busy database would.
		const db = new Proxy(env.DB, {
			get(target, prop) {
				if (prop !== "batch") return Reflect.get(target, prop, target);
				return async (statements: D1PreparedStatement[]) => {
					const results = await target.batch(statements);
					await scheduler.wait(300);
					order.push("batch answered");
					return results;
				};
			},
		});
		const { ids, result } = await runConsumer([notification], { env: { BUCKET: bucket, DB: db } });
		expect(result.explicitAcks).toEqual(ids);
		expect(await onlyJob(key)).toMatchObject({ status: "succeeded" });
		// The claim's transaction, then the finish's: the image was read during the first.
		expect(order).toEqual(["image read", "batch answered", "batch answered"]);
	});
});
