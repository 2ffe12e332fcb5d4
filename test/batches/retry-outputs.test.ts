/**
 * A retry by filter runs as its source batch did: a `from_batch` batch given no output options takes
 * the source batch's output kind, language and write-back, its jobs carry them, and their results
 * are written back. Through the API and the real queues.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Job } from "../../shared/jobs/schema";
import { call, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { createBatch, jobsOfBatch, putObjects, settled, waitForBatch } from "./support";

const sidecarOf = (key: string) => key.replace(/\.jpg$/, ".txt");
const jobJson = async (id: string) => parsed(await call("GET", `/v1/jobs/${id}`), Job);

describe("from_batch inherits the source batch's outputs", () => {
	it("retries the failed objects as tags in German written back as sidecars, like the batch they failed in", async () => {
		const prefix = uniqueKey("retry-outputs/");
		const good = [`${prefix}a.jpg`, `${prefix}b.jpg`];
		const bad = [`${prefix}c.jpg`, `${prefix}d.jpg`];
		await putObjects(good);
		// Bytes that are no image: their jobs fail (unsupported_media_type) and write nothing back.
		for (const key of bad) await env.BUCKET.put(key, "not an image yet");

		const first = await createBatch({ prefix, output: "tags", language: "de", write_back: "sidecar" });
		const firstDone = await waitForBatch(first.id, settled);
		expect(firstDone.counts).toMatchObject({ total: 4, succeeded: 2, failed: 2 });
		const failed = (await jobsOfBatch(first.id)).filter((j) => j.status === "failed");
		expect(failed.map((j) => j.key)).toEqual(bad);
		expect(failed.every((j) => j.error_code === "unsupported_media_type")).toBe(true);
		for (const key of bad) expect(await env.BUCKET.head(sidecarOf(key))).toBeNull();

		// The objects are fixed, then only the failed ones are retried, with no output option given.
		await putObjects(bad);
		const retry = await createBatch({ from_batch: first.id, only: { status: ["failed"] } });
		expect(retry).toMatchObject({ key_count: 2, output: "tags", language: "de", write_back: "sidecar" });
		const retried = await waitForBatch(retry.id, settled);
		expect(retried.counts).toMatchObject({ total: 2, succeeded: 2, failed: 0 });

		const jobs = await jobsOfBatch(retry.id);
		expect(jobs.map((j) => j.key)).toEqual(bad);
		for (const row of jobs) {
			const job = await jobJson(row.id);
			expect(job).toMatchObject({ status: "succeeded", output: "tags", language: "de" });
			expect(job.write_back).toEqual({ target: "sidecar", status: "written", error: null });
			const tags = z.array(z.string()).parse(job.result);
			const sidecar = await env.BUCKET.get(sidecarOf(row.key));
			expect(await sidecar?.text()).toBe(tags.join(", "));
			expect(sidecar?.customMetadata).toEqual({ "caption-job": row.id });
		}
	});

	it("takes an option given with the retry over the source batch's, and the others from the source", async () => {
		const prefix = uniqueKey("retry-outputs-given/");
		const bad = `${prefix}a.jpg`;
		await env.BUCKET.put(bad, "not an image yet");
		const first = await createBatch({ prefix, output: "tags", language: "de", write_back: "sidecar" });
		await waitForBatch(first.id, settled);
		await putObjects([bad]);

		const retry = await createBatch({ from_batch: first.id, only: { status: ["failed"] }, output: "title" });
		expect(retry).toMatchObject({ output: "title", language: "de", write_back: "sidecar" });
		await waitForBatch(retry.id, settled);
		const [row] = await jobsOfBatch(retry.id);
		expect(await jobJson(row?.id ?? "")).toMatchObject({ status: "succeeded", output: "title", language: "de" });
		expect(await (await env.BUCKET.get(sidecarOf(bad)))?.text()).toBe(row?.caption);
	});
});
