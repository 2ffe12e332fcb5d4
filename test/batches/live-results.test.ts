/**
 * Results at any moment: `GET /v1/batches/{id}/results?since=` over a batch while it runs returns
 * each row once, in the order rows became results, with the cursor for the next call in
 * `Next-Cursor`; rows finishing with equal times or committing out of the order of their times are
 * neither repeated nor missed; a cancelled batch keeps every finished result.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Batch } from "../../shared/batches/schema";
import { Job } from "../../shared/jobs/schema";
import { claimJobById, finishStatement } from "../../shared/jobs/store";
import { emulator } from "../../shared/models/emulator";
import { finishWithEvent } from "../../shared/webhooks/outbox";
import { call, invalidFields, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { captionJob, createBatch, getBatch, putObjects, queuedBatch, settled, waitForBatch } from "./support";

beforeEach(() => emulator.reset());

/** A line of the JSON Lines export: a Job, or a missing key. */
const Line = z.union([Job, z.object({ key: z.string(), status: z.literal("missing") })]);

/** One poll of the completion-order export: its rows (JSON Lines) and the cursor for the next one. */
async function poll(batchId: string, since: string): Promise<{ lines: z.infer<typeof Line>[]; next: string }> {
	const res = await call("GET", `/v1/batches/${batchId}/results?format=jsonl&since=${since}`);
	expect(res.status).toBe(200);
	const next = res.headers.get("next-cursor");
	expect(next).toMatch(/^\d+$/);
	const text = new TextDecoder().decode(await res.arrayBuffer());
	const lines = text
		.split("\n")
		.filter(Boolean)
		.map((line) => Line.parse(JSON.parse(line)));
	return { lines, next: next ?? "" };
}

describe("GET /v1/batches/{id}/results?since=", () => {
	it("re-polling a running batch returns every row exactly once, in completion order, each as soon as it is a result", async () => {
		const { batch, jobs } = await queuedBatch(6, true);
		// Finished in an order that is neither key order nor creation order.
		const order = [4, 0, 6, 2, 5, 1, 3].map((i) => jobs[i]).filter((j) => j !== undefined);
		expect(order).toHaveLength(7);

		let cursor = "0";
		const first = await poll(batch.id, cursor);
		expect(first.lines).toEqual([]);
		expect(first.next).toBe("0");
		const seen: string[] = [];
		for (const [i, job] of order.entries()) {
			await captionJob(job.id);
			// Two finishes between some polls: both come, in their order.
			if (i % 3 === 1) continue;
			const { lines, next } = await poll(batch.id, cursor);
			seen.push(...lines.map((l) => l.key));
			cursor = next;
			// No batch-end gating: the rows just finished are there while the batch still runs.
			expect(seen).toEqual(order.slice(0, i + 1).map((j) => j.key));
			if (i < order.length - 1) expect((await getBatch(batch.id)).status).toBe("running");
		}
		expect(seen).toEqual(order.map((j) => j.key));
		expect(new Set(seen).size).toBe(7);
		// The text file failed: its row came in its place with its error.
		const done = await getBatch(batch.id);
		expect(done).toMatchObject({ status: "completed", counts: { succeeded: 6, failed: 1 } });
		const again = await poll(batch.id, cursor);
		expect(again).toEqual({ lines: [], next: cursor });

		// From the start, after the end: the same rows in the same order, in every format.
		const all = await poll(batch.id, "0");
		expect(all.lines.map((l) => l.key)).toEqual(seen);
		const csv = await call("GET", `/v1/batches/${batch.id}/results?format=csv&since=0`);
		const csvKeys = new TextDecoder()
			.decode(await csv.arrayBuffer())
			.trimEnd()
			.split("\r\n")
			.slice(1)
			.map((row) => row.split(",")[0]);
		expect(csvKeys).toEqual(seen);
		// Without `since`: key order, and the cursor for polling on.
		const full = await call("GET", `/v1/batches/${batch.id}/results`);
		expect(full.headers.get("next-cursor")).toBe(cursor);
	});

	it("rows finishing with equal times, or committing after a row with a later time, are neither missed nor repeated", async () => {
		const { batch, jobs } = await queuedBatch(3);
		const [a, b, c] = jobs as [(typeof jobs)[number], (typeof jobs)[number], (typeof jobs)[number]];
		const t = Date.now();
		// Three consumers claimed the jobs; each finishes with its own clock.
		const finishAt = async (jobId: string, now: number) => {
			const claimed = await claimJobById(env.DB, jobId, { token: crypto.randomUUID(), now: t, expiresAt: t + 60_000 });
			if (claimed.kind !== "claimed") throw new Error(`job ${jobId} was not claimed`);
			const outcome = { status: "succeeded", caption: `caption of ${jobId}` } as const;
			expect(
				await finishWithEvent(env.DB, finishStatement(env.DB, claimed.job, now, outcome, {}), jobId, now),
			).not.toBeNull();
		};
		await finishAt(a.id, t + 1000);
		const afterA = await poll(batch.id, "0");
		expect(afterA.lines.map((l) => l.key)).toEqual([a.key]);
		// b finished earlier than a by its clock but commits later; c finishes at the same millisecond as a.
		await finishAt(b.id, t);
		await finishAt(c.id, t + 1000);
		const rest = await poll(batch.id, afterA.next);
		expect(rest.lines.map((l) => l.key)).toEqual([b.key, c.key]);
		expect(await poll(batch.id, rest.next)).toEqual({ lines: [], next: rest.next });
	});

	it("missing keys and skipped objects are results too, in the order they became ones", async () => {
		const prefix = uniqueKey("live-keys/");
		const [done, fresh, absent] = [`${prefix}done.jpg`, `${prefix}fresh.jpg`, `${prefix}absent.jpg`];
		await putObjects([done, fresh]);
		await waitForBatch((await createBatch({ keys: [done] })).id, settled);
		const batch = await waitForBatch((await createBatch({ keys: [done, fresh, absent] })).id, settled);
		expect(batch.counts).toMatchObject({ skipped: 1, missing: 1, succeeded: 1 });
		const { lines } = await poll(batch.id, "0");
		// The listing's page recorded the missing key and the skip before the fresh job could finish.
		expect(lines.map((l) => [l.key, l.status])).toEqual([
			[absent, "missing"],
			[done, "succeeded"],
			[fresh, "succeeded"],
		]);
	});

	it("cancelling keeps every finished result; the cancelled rows follow them", async () => {
		const { batch, jobs } = await queuedBatch(5);
		await captionJob((jobs[3] ?? jobs[0])?.id ?? "");
		await captionJob((jobs[1] ?? jobs[0])?.id ?? "");
		const before = await poll(batch.id, "0");
		expect(before.lines.map((l) => l.key)).toEqual([jobs[3]?.key, jobs[1]?.key]);
		const res = await call("POST", `/v1/batches/${batch.id}/cancel`);
		expect(res.status).toBe(200);
		expect(await parsed(res, Batch)).toMatchObject({ status: "cancelled", counts: { succeeded: 2, cancelled: 3 } });

		const after = await poll(batch.id, before.next);
		expect(after.lines.map((l) => l.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
		// The whole export still holds both captions.
		const all = await poll(batch.id, "0");
		const succeeded = all.lines.flatMap((l) => ("caption" in l && l.status === "succeeded" ? [l] : []));
		expect(succeeded.map((l) => l.key)).toEqual([jobs[3]?.key, jobs[1]?.key]);
		expect(succeeded.every((l) => typeof l.caption === "string" && l.caption.length > 0)).toBe(true);
		expect(all.lines).toHaveLength(5);
	});

	it("a cursor that is not one, or is ahead of the batch, is a 400 on since", async () => {
		const { batch } = await queuedBatch(1);
		for (const since of ["abc", "-1", "1"]) {
			const res = await call("GET", `/v1/batches/${batch.id}/results?since=${since}`);
			expect(res.status).toBe(400);
			expect(await invalidFields(res)).toEqual(["since"]);
		}
	});
});
