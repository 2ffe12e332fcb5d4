/**
 * Batches through the real queues: a prefix backfilled over several listing pages, a list of keys,
 * skip_captioned, and a listing that stops mid-way and resumes (a Worker that died after committing
 * a page, duplicate page messages, a lost page message found by the cron) without a second job.
 * The test config lists 3 objects a page (BATCH_PAGE_SIZE).
 */
import { env } from "cloudflare:workers";
import { parse } from "csv-parse/sync";
import { beforeEach, describe, expect, it } from "vitest";
import { getBatchRow } from "../../shared/batches/read";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { eventJobId } from "../../shared/webhooks/job-event";
import { planPage } from "../../workers/consumer/batch-lister";
import { commitPage } from "../../workers/consumer/batch-pages";
import { readSettings } from "../../workers/consumer/config";
import { call, pageOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { runScheduled } from "../support/queue";
import { hook, subscribe } from "../webhooks/support";
import {
	batchEventDeliveries,
	countedFromRows,
	counts,
	createBatch,
	deliverPage,
	duplicateKeys,
	getBatch,
	jobsOfBatch,
	putObjects,
	settled,
	unsentBatch,
	waitForBatch,
} from "./support";

beforeEach(() => emulator.reset());

const keysUnder = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}img-${i}.jpg`);

describe("a prefix batch", () => {
	it("lists a backfilled prefix page by page, gives every object one job and completes with exact counts", async () => {
		const prefix = uniqueKey("backfill/");
		const keys = keysUnder(prefix, 7);
		await putObjects(keys);
		// An object just outside the prefix is not part of the batch.
		await putObjects([`${prefix.slice(0, -1)}-other/x.jpg`]);

		const created = await createBatch({ prefix, metadata: { dataset: "holidays" } });
		expect(created).toMatchObject({
			id: expect.stringMatching(/^bat_/),
			status: "listing",
			prefix,
			key_count: null,
			prompt: null,
			max_tokens: null,
			metadata: { dataset: "holidays" },
			listed_at: null,
			completed_at: null,
		});

		const done = await waitForBatch(created.id, settled);
		expect(done.status).toBe("completed");
		expect(done.counts).toEqual(counts({ succeeded: 7 }));
		expect(done.counts).toEqual(await countedFromRows(created.id));
		expect(Date.parse(done.listed_at ?? "")).toBeLessThanOrEqual(Date.parse(done.completed_at ?? ""));
		// Three pages of 3, 3 and 1 objects.
		expect((await getBatchRow(env.DB, created.id))?.pages_listed).toBe(3);

		const jobs = await jobsOfBatch(created.id);
		expect(jobs.map((j) => j.key)).toEqual(keys);
		expect(jobs.every((j) => j.source === "batch" && j.caption?.includes("64×48 pixels"))).toBe(true);
		expect(emulator.callsTo()).toBe(7);

		const listed = await call("GET", `/v1/jobs?batch_id=${created.id}&limit=100`);
		const page = await parsed(listed, pageOf(Job));
		expect(page.data.map((j) => j.key).sort()).toEqual(keys);
		expect(page.data.every((j) => j.batch_id === created.id)).toBe(true);
	});

	it("skips objects whose current version already has a succeeded job with the same prompt, unless told not to", async () => {
		const prefix = uniqueKey("skip/");
		const keys = keysUnder(prefix, 4);
		await putObjects(keys);
		const first = await waitForBatch((await createBatch({ prefix })).id, settled);
		expect(first.counts).toMatchObject({ total: 4, succeeded: 4, skipped: 0 });

		// A new version of one object is captioned again; the other three are skipped.
		await putObjects([keys[0] as string], "small.png");
		const second = await waitForBatch((await createBatch({ prefix })).id, settled);
		expect(second.counts).toEqual(counts({ succeeded: 1, skipped: 3 }));
		expect(second.counts).toEqual(await countedFromRows(second.id));
		expect((await jobsOfBatch(second.id)).map((j) => j.key)).toEqual([keys[0]]);

		// Another prompt, or skip_captioned false: nothing is skipped.
		const other = await waitForBatch((await createBatch({ prefix, prompt: "What colour is it?" })).id, settled);
		expect(other.counts).toMatchObject({ succeeded: 4, skipped: 0 });
		const again = await waitForBatch((await createBatch({ prefix, skip_captioned: false })).id, settled);
		expect(again.counts).toMatchObject({ succeeded: 4, skipped: 0 });
		expect(emulator.callsTo()).toBe(4 + 1 + 4 + 4);

		// With everything captioned with that prompt already, a batch completes as soon as it is listed.
		const none = await waitForBatch((await createBatch({ prefix, prompt: "What colour is it?" })).id, settled);
		expect(none).toMatchObject({ status: "completed", counts: { total: 4, skipped: 4, succeeded: 0 } });
		expect(emulator.callsTo()).toBe(13);
	});

	it("leaves out the prefix's sidecars (.txt, .json): no job, not in the counts or the plan", async () => {
		const prefix = uniqueKey("with-sidecars/");
		await putObjects([`${prefix}a.jpg`, `${prefix}b.jpg`]);
		await env.BUCKET.put(`${prefix}a.txt`, "A caption written back beside its image.");
		await env.BUCKET.put(`${prefix}b.JSON`, '{"caption": "someone else\'s sidecar"}');
		const calls = emulator.callsTo();
		const plan = await waitForBatch((await createBatch({ prefix, dry_run: true })).id, (b) => b.status === "planned");
		expect(plan.counts.total).toBe(2);
		const done = await waitForBatch((await createBatch({ prefix })).id, settled);
		expect(done).toMatchObject({ status: "completed", counts: { total: 2, succeeded: 2, failed: 0 } });
		expect(emulator.callsTo() - calls).toBe(2);
		expect((await jobsOfBatch(done.id)).map((j) => j.key).sort()).toEqual([`${prefix}a.jpg`, `${prefix}b.jpg`]);
	});

	it("an empty prefix completes at once with zero counts", async () => {
		const done = await waitForBatch((await createBatch({ prefix: uniqueKey("nothing-here/") })).id, settled);
		expect(done).toMatchObject({ status: "completed", counts: { total: 0, succeeded: 0 } });
	});
});

describe("a keys batch", () => {
	it("captions the given keys once each; a key that is not in the bucket is counted missing and costs no job", async () => {
		const prefix = uniqueKey("keys/");
		const [a, b, c] = keysUnder(prefix, 3) as [string, string, string];
		await putObjects([a, b, c]);
		const missing = `${prefix}missing.jpg`;
		const created = await createBatch({ keys: [a, missing, b, a, c], prompt: "Describe it", max_tokens: 64 });
		expect(created).toMatchObject({
			status: "listing",
			prefix: null,
			key_count: 4,
			prompt: "Describe it",
			max_tokens: 64,
		});

		const done = await waitForBatch(created.id, settled);
		expect(done).toMatchObject({ status: "completed" });
		expect(done.counts).toEqual(counts({ succeeded: 3, missing: 1 }));
		expect(done.counts).toEqual(await countedFromRows(created.id));
		const jobs = await jobsOfBatch(created.id);
		expect(jobs.map((j) => [j.key, j.status, j.error_code])).toEqual([
			[a, "succeeded", null],
			[b, "succeeded", null],
			[c, "succeeded", null],
		]);
		expect(
			jobs.filter((j) => j.status === "succeeded").every((j) => j.prompt === "Describe it" && j.max_tokens === 64),
		).toBe(true);
	});

	it("missing keys cost nothing downstream: no job row, no event, no webhook; counted and exported as object_not_found", async () => {
		const prefix = uniqueKey("keys-missing/");
		const [present] = keysUnder(prefix, 1) as [string];
		await putObjects([present]);
		const absent = [`${prefix}gone-1.jpg`, `${prefix}gone-2.jpg`, `${prefix}gone-3.jpg`, `${prefix}gone-4.jpg`];
		const receiver = hook("missing-keys");
		const subscription = await subscribe({ url: receiver.url, prefix, events: ["job.failed", "batch.completed"] });

		const created = await createBatch({ keys: [absent[0], present, ...absent.slice(1)] });
		const done = await waitForBatch(created.id, settled);
		expect(done.counts).toEqual(counts({ succeeded: 1, missing: 4 }));
		expect(done.counts).toEqual(await countedFromRows(created.id));

		// No job row and so no event for any missing key.
		const { results: rows } = await env.DB.prepare(
			"SELECT key FROM jobs WHERE key IN (SELECT value FROM json_each(?1))",
		)
			.bind(JSON.stringify(absent))
			.all();
		expect(rows).toEqual([]);
		const events = await env.DB.prepare(
			`SELECT e.type FROM webhook_events e LEFT JOIN jobs j ON j.id = ${eventJobId("e.")}
			WHERE (j.batch_id = ?1 OR e.batch_id = ?1) AND e.type <> 'batch.progress' ORDER BY e.type`,
		)
			.bind(created.id)
			.all<{ type: string }>();
		expect(events.results.map((e) => e.type)).toEqual(["batch.completed", "job.succeeded"]);
		// The subscription (job.failed and batch.completed under the prefix) hears the batch only.
		await batchEventDeliveries(created.id);
		const deliveries = await env.DB.prepare("SELECT event_id FROM webhook_deliveries WHERE subscription_id = ?")
			.bind(subscription.id)
			.all();
		expect(deliveries.results).toHaveLength(1);

		// The export lists them in key order, each with error_code object_not_found.
		const csv = await call("GET", `/v1/batches/${created.id}/results?format=csv`);
		const table = parse(await csv.text(), { columns: true }) as Record<string, string>[];
		expect(table.map((r) => [r.key, r.status, r.error_code])).toEqual([
			...absent.map((key) => [key, "missing", "object_not_found"]),
			[present, "succeeded", ""],
		]);
		const jsonl = await call("GET", `/v1/batches/${created.id}/results?format=jsonl`);
		const lines = (await jsonl.text())
			.trimEnd()
			.split("\n")
			.map((l) => JSON.parse(l) as { key: string; status: string; error: { code: string } | null });
		expect(lines.map((l) => [l.key, l.status, l.error?.code ?? null])).toEqual([
			...absent.map((key) => [key, "missing", "object_not_found"]),
			[present, "succeeded", null],
		]);
	});
});

describe("a listing that stops mid-way", () => {
	it("resumes after a Worker died between committing a page and sending its messages, without a second job", async () => {
		const prefix = uniqueKey("resume/");
		const keys = keysUnder(prefix, 7);
		await putObjects(keys);
		const batch = await unsentBatch(prefix);

		// Page 0, delivered twice at once (a duplicate message): one lister commits it, the other does nothing.
		await Promise.all([deliverPage(batch.id, 0), deliverPage(batch.id, 0)]);
		expect((await getBatch(batch.id)).counts.total).toBe(3);

		// Page 1: the Worker commits the page, then dies before sending anything (no caption message,
		// no next page): the state commitPage alone leaves.
		const row = await getBatchRow(env.DB, batch.id);
		if (!row) throw new Error("no batch row");
		const plan = await planPage(env, row, readSettings(env));
		expect(await commitPage(env.DB, row, 1, plan, Date.now())).toMatchObject({ kind: "committed" });
		expect(await getBatchRow(env.DB, batch.id)).toMatchObject({ pages_listed: 2, unsent_page: 1 });

		// Its message is delivered again: the lister sends what the dead one did not, then forgets it.
		const retry = await deliverPage(batch.id, 1, { attempts: 2 });
		expect(retry.result.explicitAcks).toEqual(retry.ids);
		expect(await getBatchRow(env.DB, batch.id)).toMatchObject({ pages_listed: 2, unsent_page: null, unsent: null });
		// A late duplicate of page 1, and page 0 once more, change nothing.
		await deliverPage(batch.id, 1, { attempts: 3 });
		await deliverPage(batch.id, 0, { attempts: 2 });
		expect((await getBatch(batch.id)).counts.total).toBe(6);

		await deliverPage(batch.id, 2);
		await deliverPage(batch.id, 2);
		const done = await waitForBatch(batch.id, settled);
		expect(done.counts).toEqual(counts({ succeeded: 7 }));
		expect(done.counts).toEqual(await countedFromRows(batch.id));
		expect(await duplicateKeys(batch.id)).toEqual([]);
		expect((await jobsOfBatch(batch.id)).map((j) => j.key)).toEqual(keys);
		// Caption messages sent twice for page 1 cost no second model call.
		expect(emulator.callsTo()).toBe(7);
	});

	it("a listing whose page message was lost is sent again by the consumer's cron and completes", async () => {
		const prefix = uniqueKey("lost/");
		await putObjects(keysUnder(prefix, 4));
		// A batch whose first page message never reached the queue, ten minutes and more ago.
		const batch = await unsentBatch(prefix);
		await env.DB.prepare("UPDATE batches SET updated_at = ? WHERE id = ?")
			.bind(Date.now() - 11 * 60_000, batch.id)
			.run();

		await runScheduled();
		const done = await waitForBatch(batch.id, settled);
		expect(done.counts).toMatchObject({ total: 4, succeeded: 4 });
		expect(await duplicateKeys(batch.id)).toEqual([]);
	});
});
