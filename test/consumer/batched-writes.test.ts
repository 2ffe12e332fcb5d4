/**
 * The finishes of a queue batch are written in one D1 transaction with the statistics counters of
 * them all (workers/consumer/finish.ts, shared/jobs/batched-counts.ts): the counters stay equal to
 * the jobs' rows, and a finish that cannot be written fails alone.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseRows } from "../../shared/d1-rows";
import { emulator } from "../../shared/models/emulator";
import { fixture, upload } from "../support/fixtures";
import { resetModels } from "../support/models";
import { jobsForKey, onlyJob, runConsumer } from "../support/queue";

beforeEach(resetModels);

/** A prefix of this test's own, counted as a scope of the statistics (from no jobs). */
async function countedScope(name: string): Promise<string> {
	const prefix = `bw-${name}-${crypto.randomUUID().slice(0, 8)}/`;
	await env.DB.prepare("INSERT INTO stat_scopes (prefix, created_at) VALUES (?1, ?2)").bind(prefix, Date.now()).run();
	return prefix;
}

const StatusCount = z.object({ status: z.string(), n: z.number().int() });
const Completions = z.object({
	bucket_seconds: z.number().int(),
	completed: z.number().int(),
	succeeded: z.number().int(),
	failed: z.number().int(),
});

/** The scope's counters and what its jobs' rows say they should be. */
async function countersAndRows(prefix: string) {
	const counted = await env.DB.prepare("SELECT status, n FROM job_counts WHERE scope = ?1 AND n <> 0 ORDER BY status")
		.bind(prefix)
		.all()
		.then(parseRows(StatusCount));
	const rows = await env.DB.prepare(
		"SELECT status, count(*) AS n FROM jobs WHERE substr(key, 1, length(?1)) = ?1 GROUP BY status ORDER BY status",
	)
		.bind(prefix)
		.all()
		.then(parseRows(StatusCount));
	const completions = await env.DB.prepare(
		`SELECT bucket_seconds, sum(completed) AS completed, sum(succeeded) AS succeeded, sum(failed) AS failed
		FROM job_completions WHERE scope = ?1 GROUP BY bucket_seconds ORDER BY bucket_seconds`,
	)
		.bind(prefix)
		.all()
		.then(parseRows(Completions));
	const n = (status: string) => rows.find((r) => r.status === status)?.n ?? 0;
	const terminal = { completed: n("succeeded") + n("failed"), succeeded: n("succeeded"), failed: n("failed") };
	return {
		counted,
		rows,
		completions,
		expectedCompletions: terminal.completed ? [30, 900].map((b) => ({ bucket_seconds: b, ...terminal })) : [],
	};
}

describe("a queue batch's finishes", () => {
	it("are one write at one time, and the counters equal the rows after mixed batches", async () => {
		const prefix = await countedScope("mixed");
		const jpeg = await fixture("small.jpg");
		const good = await Promise.all(["a", "b", "c"].map((n) => upload(`${prefix}${n}.jpg`, jpeg)));
		const bad = await upload(`${prefix}bad.jpg`, jpeg, { "max-tokens": "many" });
		// A long hold: the batch's four finishes are written together however slow the machine.
		const hold = { env: { WRITE_HOLD_MS: "10000" } };
		const first = await runConsumer([...good, bad, good[0]], hold);
		expect(first.result.retryMessages.map((m) => m.msgId)).toEqual([first.ids[4]]);

		const finished = await Promise.all([...good, bad].map((n) => onlyJob(n.object.key)));
		expect(finished.map((j) => j.status)).toEqual(["succeeded", "succeeded", "succeeded", "failed"]);
		// Written in one transaction: one completion time for the four.
		expect(new Set(finished.map((j) => j.completed_at)).size).toBe(1);
		expect(emulator.callsTo()).toBe(3);

		// A second batch: a new upload, a redelivery of a finished job, and a job that was queued.
		const later = await upload(`${prefix}d.jpg`, jpeg);
		const second = await runConsumer([later, good[1]], hold);
		expect(second.result.explicitAcks).toEqual(second.ids);
		expect((await onlyJob(later.object.key)).status).toBe("succeeded");

		const { counted, rows, completions, expectedCompletions } = await countersAndRows(prefix);
		expect(rows).toEqual([
			{ status: "failed", n: 1 },
			{ status: "succeeded", n: 4 },
		]);
		expect(counted).toEqual(rows);
		expect(completions).toEqual(expectedCompletions);
	});

	it("that cannot all be written: the one that fails is retried alone, the others finish and are counted", async () => {
		const prefix = await countedScope("partial");
		const jpeg = await fixture("small.jpg");
		const notifications = await Promise.all(["a", "b", "c"].map((n) => upload(`${prefix}${n}.jpg`, jpeg)));
		const broken = notifications[1]?.object.key ?? "";
		// D1 refuses this one job's finish (as a constraint would): the batch's transaction fails part-way.
		const trigger = `bw_refuse_${crypto.randomUUID().replaceAll("-", "")}`;
		await env.DB.prepare(
			`CREATE TRIGGER ${trigger} BEFORE UPDATE OF status ON jobs
			WHEN new.key = '${broken}' AND new.status IN ('succeeded', 'failed')
			BEGIN SELECT RAISE(ABORT, 'this finish cannot be written'); END`,
		).run();
		try {
			const { ids, result } = await runConsumer(notifications, { env: { WRITE_HOLD_MS: "10000" } });
			expect(result.retryMessages.map((m) => m.msgId)).toEqual([ids[1]]);
			expect(result.explicitAcks).toEqual([ids[0], ids[2]]);
		} finally {
			await env.DB.prepare(`DROP TRIGGER ${trigger}`).run();
		}
		const [a, b, c] = await Promise.all(notifications.map((n) => onlyJob(n.object.key)));
		expect([a?.status, b?.status, c?.status]).toEqual(["succeeded", "processing", "succeeded"]);
		const events = await env.DB.prepare(
			"SELECT job_id FROM webhook_events WHERE job_id IN (?1, ?2, ?3) ORDER BY job_id",
		)
			.bind(a?.id, b?.id, c?.id)
			.all()
			.then(parseRows(z.object({ job_id: z.string() })));
		expect(events.map((e) => e.job_id).sort()).toEqual([a?.id, c?.id].sort());

		const { counted, rows, completions, expectedCompletions } = await countersAndRows(prefix);
		expect(rows).toEqual([
			{ status: "processing", n: 1 },
			{ status: "succeeded", n: 2 },
		]);
		expect(counted).toEqual(rows);
		expect(completions).toEqual(expectedCompletions);
		expect(await jobsForKey(broken)).toHaveLength(1);
	});
});
