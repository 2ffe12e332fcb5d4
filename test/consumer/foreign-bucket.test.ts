/** Notifications about another bucket than the service's: counted, acknowledged, never a job. */
import { describe, expect, it } from "vitest";
import { Stats } from "../../workers/status/jobs/stats";
import { call, parsed } from "../status/support";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { counter, jobsForKey, onlyJob, runConsumer } from "../support/queue";

describe("notifications from another bucket", () => {
	it("are acknowledged and counted without making a job; the rest of the batch is captioned", async () => {
		const key = uniqueKey("elsewhere.jpg");
		const ours = await upload(key, await fixture("small.jpg"));
		// The same object version, as a rule on another bucket would announce it.
		const foreign = { ...ours, bucket: "someone-elses-bucket" };
		const deletion = { ...ours, bucket: "someone-elses-bucket", action: "DeleteObject" };
		const before = await counter("foreign_bucket_notifications");

		const { ids, result } = await runConsumer([foreign, deletion, ours]);
		expect(result.explicitAcks.sort()).toEqual([...ids].sort());
		expect(result.retryMessages).toEqual([]);
		expect(await counter("foreign_bucket_notifications")).toBe(before + 2);
		const job = await onlyJob(key);
		expect(job).toMatchObject({ bucket: "images", status: "succeeded" });

		const stats = await parsed(await call("GET", "/v1/stats"), Stats);
		expect(stats.counters.foreign_bucket_notifications).toBe(before + 2);
	});

	it("a dead-lettered notification about another bucket records no failed job", async () => {
		const key = uniqueKey("elsewhere-dlq.jpg");
		const ours = await upload(key, await fixture("small.jpg"));
		const { ids, result } = await runConsumer([{ ...ours, bucket: "someone-elses-bucket" }], {
			queue: "caption-jobs-dlq",
		});
		expect(result.explicitAcks).toEqual(ids);
		expect(await jobsForKey(key)).toEqual([]);
	});
});
