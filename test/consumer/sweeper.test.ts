/**
 * The stalled-job sweeper: every action re-checks staleness in its own statement (a job a consumer
 * touched after the sweep read it is left alone), one run goes through more than a page, and the
 * cut-offs of a restarted local stack (`restarted_at`) re-queue work whose lease holder died with it.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { parseRow } from "../../shared/d1-rows";
import { JobRow } from "../../shared/jobs/schema";
import { JOB_COLUMNS } from "../../shared/jobs/texts";
import { ADAPTERS } from "../../shared/models/registry";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { readSettings } from "../../workers/consumer/config";
import { keepingLease } from "../../workers/consumer/lease";
import { recoverConsumer } from "../../workers/consumer/recovery";
import { requeueStalledJobs } from "../../workers/consumer/stalled-jobs";
import { QUEUED_STALL_MS, sweepStalledJobs } from "../../workers/consumer/sweeper";
import { putObjects, settled, unsentBatch, waitForBatch } from "../batches/support";
import { sqlText } from "../support/d1-faults";
import { uniqueKey } from "../support/fixtures";
import { insertJob, insertJobs } from "../support/jobs";
import { LLAVA } from "../support/models";

/** Messages go to a queue nothing consumes: these tests look at D1 only. */
const held = { ...env, CAPTION_JOBS: env.HELD_MESSAGES, WEBHOOK_DELIVERIES: env.HELD_MESSAGES };

/** Jobs failed with `held`: their events' fan-out went to the queue nothing consumes. */
const failedWithHeld: string[] = [];

// No fan-out will come for those events: gone, so that the next file of the runtime
// (test/support/quiet.ts waits for every event's fan-out) does not wait for ever.
afterAll(async () => {
	if (failedWithHeld.length === 0) return;
	await env.DB.batch(
		failedWithHeld.map((id) =>
			env.DB.prepare(`DELETE FROM webhook_events WHERE dispatched_at IS NULL AND ${isEventOfJob("", "?1")}`).bind(id),
		),
	);
});

const settings = readSettings(env);

const jobById = (id: string) =>
	env.DB.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).bind(id).first().then(parseRow(JobRow));

describe("the stalled-job sweeper", () => {
	it("a job a consumer claims between the sweep's read and its update is neither re-queued nor failed", async () => {
		const now = Date.now();
		const old = now - 30 * 60_000;
		const exhausted = { status: "processing" as const, attempts: settings.CAPTION_MAX_RETRIES + 1 };
		const lapsed = { lease_token: "dead", lease_expires_at: old + 1000, started_at: old };
		// In id order (ids grow with created_at): A fails first; its update is when "a consumer" claims B and C.
		const [a, b, c] = await insertJobs([
			{ key: uniqueKey("race-a.png"), ...exhausted, ...lapsed, created_at: old, updated_at: old },
			{ key: uniqueKey("race-b.png"), status: "queued", attempts: 1, created_at: old + 1, updated_at: old + 1 },
			{ key: uniqueKey("race-c.png"), ...exhausted, ...lapsed, created_at: old + 2, updated_at: old + 2 },
		]);
		if (!a || !b || !c) throw new Error("jobs not inserted");
		const claimedUntil = now + 120_000;
		const trigger = `test_claim_${now}`;
		// A consumer's claim, as claimJobById writes it, landing while the sweep is between its SELECT and UPDATEs.
		await env.DB.prepare(
			`CREATE TRIGGER ${trigger} AFTER UPDATE OF status ON jobs WHEN NEW.id = ${sqlText(a.id)} AND NEW.status = 'failed'
			BEGIN UPDATE jobs SET status = 'processing', attempts = attempts + 1, lease_token = 'live',
				lease_expires_at = ${claimedUntil}, updated_at = ${now}
				WHERE id IN (${sqlText(b.id)}, ${sqlText(c.id)}); END`,
		).run();
		try {
			await sweepStalledJobs(held, settings, now);
		} finally {
			await env.DB.prepare(`DROP TRIGGER ${trigger}`).run();
		}
		failedWithHeld.push(a.id);
		expect(await jobById(a.id)).toMatchObject({ status: "failed", error_code: "retries_exhausted" });
		for (const id of [b.id, c.id]) {
			expect(await jobById(id)).toMatchObject({
				status: "processing",
				lease_token: "live",
				lease_expires_at: claimedUntil,
				error_code: null,
			});
		}
	});

	it("one run re-queues every stalled job, more than a page of them", async () => {
		const now = Date.now();
		const old = now - QUEUED_STALL_MS - 60_000;
		const prefix = uniqueKey("many-stalled/");
		const jobs = await insertJobs(
			Array.from({ length: 230 }, (_, i) => ({ key: `${prefix}${i}.png`, created_at: old, updated_at: old })),
		);
		const swept = await sweepStalledJobs(held, settings, now);
		expect(swept.requeued).toBeGreaterThanOrEqual(230);
		expect(swept.truncated).toBe(false);
		const touched = await env.DB.prepare(
			"SELECT COUNT(*) AS n FROM jobs WHERE key LIKE ?1 AND status = 'queued' AND updated_at = ?2",
		)
			.bind(`${prefix}%`, now)
			.first("n");
		expect(touched).toBe(jobs.length);
		// Gone once counted: a later test's restart sweep would otherwise re-send all of them to the
		// real queue, ahead of the work that test waits for.
		await env.DB.prepare("DELETE FROM jobs WHERE key LIKE ?1").bind(`${prefix}%`).run();
	});

	it("a job whose retry waits out a model's cool-down is left to its delayed message, then re-queued once that is late", async () => {
		const now = Date.now();
		const old = now - QUEUED_STALL_MS - 60_000;
		// Given back 11 minutes ago with a retry of an hour (releaseJob: its message's return time).
		const [waiting, late] = await insertJobs([
			{
				key: uniqueKey("cool-down.png"),
				attempts: 1,
				created_at: old,
				updated_at: old,
				lease_expires_at: old + 3_600_000,
			},
			{ key: uniqueKey("late.png"), attempts: 1, created_at: old, updated_at: old, lease_expires_at: old + 30_000 },
		]);
		if (!waiting || !late) throw new Error("jobs not inserted");
		// These two only (a sweep at a later time would take every other file's jobs too).
		const cutoffs = (at: number) => ({ now: at, queuedBefore: at - QUEUED_STALL_MS, claimedBefore: 0 });
		const ids = [waiting.id, late.id];
		expect((await requeueStalledJobs(env.DB, ids, cutoffs(now))).map((j) => j.id)).toEqual([late.id]);
		expect(await jobById(waiting.id)).toMatchObject({ status: "queued", updated_at: old, attempts: 1 });
		expect(await jobById(late.id)).toMatchObject({ status: "queued", updated_at: now, lease_expires_at: null });
		// An hour and ten minutes on, its message is late too.
		const later = old + 3_600_000 + QUEUED_STALL_MS + 1000;
		expect((await requeueStalledJobs(env.DB, [waiting.id], cutoffs(later))).map((j) => j.id)).toEqual([waiting.id]);
		await env.DB.prepare("DELETE FROM jobs WHERE id IN (?1, ?2)").bind(waiting.id, late.id).run();
	});

	it("a job claimed before the local stack restarted is re-queued at once, its lease notwithstanding", async () => {
		const now = Date.now();
		const restartedAt = now - 5_000;
		const claimed = await insertJob({
			key: uniqueKey("claimed-before-restart.png"),
			status: "processing",
			attempts: 1,
			lease_token: "old-process",
			lease_expires_at: now + 100_000,
			created_at: restartedAt - 20_000,
			updated_at: restartedAt - 10_000,
			started_at: restartedAt - 10_000,
		});
		const queued = await insertJob({
			key: uniqueKey("queued-before-restart.png"),
			created_at: restartedAt - 1_000,
			updated_at: restartedAt - 1_000,
		});
		const fresh = await insertJob({
			key: uniqueKey("claimed-after-restart.png"),
			status: "processing",
			attempts: 1,
			lease_token: "new-process",
			lease_expires_at: now + 100_000,
			created_at: restartedAt + 1_000,
			updated_at: restartedAt + 1_000,
			started_at: restartedAt + 1_000,
		});

		// The production cut-offs leave all three alone: the lease is live, the queued job is young.
		await recoverConsumer(held, {}, now);
		expect(await jobById(claimed.id)).toMatchObject({ status: "processing", lease_token: "old-process" });
		expect(await jobById(queued.id)).toMatchObject({ status: "queued", updated_at: restartedAt - 1_000 });

		const report = await recoverConsumer(held, { restarted_at: restartedAt }, now);
		expect(report.jobs_requeued).toBeGreaterThanOrEqual(2);
		expect(await jobById(claimed.id)).toMatchObject({ status: "queued", lease_token: null, updated_at: now });
		expect(await jobById(queued.id)).toMatchObject({ status: "queued", updated_at: now });
		expect(await jobById(fresh.id)).toMatchObject({ status: "processing", lease_token: "new-process" });
	});

	it("a batch listing whose page message died with the previous run resumes at once after a restart", async () => {
		const prefix = uniqueKey("listing-restart/");
		await putObjects([`${prefix}a.jpg`, `${prefix}b.jpg`]);
		// Created, its first page message never sent (lost with the process).
		const batch = await unsentBatch(prefix);
		const restartedAt = Date.now() + 1;
		// Too young for the production cut-off (10 minutes): only the restart's cut-off finds it.
		expect((await recoverConsumer(env, {}, restartedAt)).listings_resent).toBe(0);
		const report = await recoverConsumer(env, { restarted_at: restartedAt }, restartedAt);
		expect(report.listings_resent).toBeGreaterThanOrEqual(1);
		const done = await waitForBatch(batch.id, settled);
		expect(done).toMatchObject({ status: "completed" });
		expect(done.counts).toMatchObject({ succeeded: 2, total: 2 });
	});
});

describe("a lease kept through a long attempt (workers/consumer/lease.ts)", () => {
	it("is renewed before a model call once less than half of it is left; a lease taken since stops the call", async () => {
		const t0 = Date.now();
		const job = await insertJob({
			key: uniqueKey("long-attempt.png"),
			status: "processing",
			attempts: 1,
			lease_token: "mine",
			lease_expires_at: t0 + 10_000,
			started_at: t0,
		});
		const adapter = ADAPTERS.get(LLAVA);
		if (!adapter) throw new Error("no adapter");
		let paced = 0;
		const route = { adapters: [adapter], pace: async () => ({ kind: "go" as const, n: ++paced }) };
		let clock = t0 + 2000;
		const kept = keepingLease(route, env.DB, job, 10_000, () => clock);
		// 8 s of 10 left: no write.
		expect(await kept.pace(adapter)).toMatchObject({ kind: "go" });
		expect((await jobById(job.id))?.lease_expires_at).toBe(t0 + 10_000);
		// 4 s left: renewed for a whole lease from now.
		clock = t0 + 6000;
		expect(await kept.pace(adapter)).toMatchObject({ kind: "go" });
		expect((await jobById(job.id))?.lease_expires_at).toBe(t0 + 16_000);
		// Another delivery holds the job now: no call, the message comes back.
		await env.DB.prepare("UPDATE jobs SET lease_token = 'theirs' WHERE id = ?1").bind(job.id).run();
		clock = t0 + 13_000;
		expect(await kept.pace(adapter)).toMatchObject({ kind: "later" });
		expect(paced).toBe(3);
		await env.DB.prepare("DELETE FROM jobs WHERE id = ?1").bind(job.id).run();
	});
});
