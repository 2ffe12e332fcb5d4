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
import { eventJobId } from "../../shared/webhooks/job-event";
import { claimJobs } from "../../workers/consumer/claims";
import { sqlText, whileD1Refuses } from "../support/d1-faults";
import { fixture, upload } from "../support/fixtures";
import { insertJob } from "../support/jobs";
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

/** Expects the scope's jobs to be `expected` by status, and its counters and completions to say the same. */
async function expectCountedRows(prefix: string, expected: z.infer<typeof StatusCount>[]): Promise<void> {
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
	expect(rows).toEqual(expected);
	expect(counted).toEqual(rows);
	expect(completions).toEqual(terminal.completed ? [30, 900].map((b) => ({ bucket_seconds: b, ...terminal })) : []);
}

/** Makes D1 refuse to move `key`'s job to `status` (as a constraint would) while `run` runs. */
const refusing = <T>(key: string, status: string, run: () => Promise<T>): Promise<T> =>
	whileD1Refuses(
		{ table: "jobs", write: "UPDATE", when: `new.key = ${sqlText(key)} AND new.status = ${sqlText(status)}` },
		run,
	);

describe("a queue batch's claims", () => {
	it("that cannot all be written: the one that fails is retried alone, the others are claimed and counted", async () => {
		const prefix = await countedScope("claims");
		const jpeg = await fixture("small.jpg");
		const jobs = await Promise.all(
			["a", "b", "c"].map(async (name) => {
				const n = await upload(`${prefix}${name}.jpg`, jpeg);
				return insertJob({ key: n.object.key, bucket: n.bucket, etag: n.object.eTag });
			}),
		);
		const broken = jobs[1]?.key ?? "";
		const { ids, result } = await refusing(broken, "processing", () =>
			runConsumer(
				jobs.map((job) => ({ kind: "caption-job", job_id: job.id })),
				{ env: { WRITE_HOLD_MS: "10000" } },
			),
		);
		expect(result.retryMessages.map((m) => m.msgId)).toEqual([ids[1]]);
		expect(result.explicitAcks).toEqual([ids[0], ids[2]]);
		const statuses = await Promise.all(jobs.map(async (job) => (await onlyJob(job.key)).status));
		expect(statuses).toEqual(["succeeded", "queued", "succeeded"]);
		await expectCountedRows(prefix, [
			{ status: "queued", n: 1 },
			{ status: "succeeded", n: 2 },
		]);
	});
});

describe("a queue batch's claim time", () => {
	it("is the time the group is written, for every claim of it, not the time each message asked", async () => {
		const prefix = await countedScope("claim-time");
		const jpeg = await fixture("small.jpg");
		const jobs = await Promise.all(
			["a", "b"].map(async (name) => {
				const n = await upload(`${prefix}${name}.jpg`, jpeg);
				return insertJob({ key: n.object.key, bucket: n.bucket, etag: n.object.eTag });
			}),
		);
		// The messages asked 4 and 2 seconds before the group was written, for leases of 60 s.
		const written = Date.now();
		const asked = (ago: number) => ({
			token: crypto.randomUUID(),
			now: written - ago,
			expiresAt: written - ago + 60_000,
		});
		const answers = await claimJobs(
			env.DB,
			jobs.map((job, i) => ({ kind: "id" as const, id: job.id, lease: asked(i === 0 ? 4_000 : 2_000) })),
			written,
		);
		const claimed = answers.map((answer) =>
			answer.kind === "made" && answer.result.kind === "claimed" ? answer.result.job : null,
		);
		expect(claimed.map((job) => job && { started_at: job.started_at, lease_expires_at: job.lease_expires_at })).toEqual(
			[
				{ started_at: written, lease_expires_at: written + 60_000 },
				{ started_at: written, lease_expires_at: written + 60_000 },
			],
		);
		await expectCountedRows(prefix, [{ status: "processing", n: 2 }]);
	});
});

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

		// A second batch: a new upload, a redelivery of a finished job, a job by id that was queued, and
		// one by id whose consumer died (processing, its lease expired: claimed again, no change of status).
		const later = await upload(`${prefix}d.jpg`, jpeg);
		const [queued, abandoned] = await Promise.all(
			["e", "f"].map(async (name, i) => {
				const object = await upload(`${prefix}${name}.jpg`, jpeg);
				const past = Date.now() - 60_000;
				const status =
					i === 0
						? { status: "queued" as const }
						: {
								status: "processing" as const,
								lease_token: "dead",
								lease_expires_at: past,
								attempts: 1,
								started_at: past,
							};
				return insertJob({ key: object.object.key, bucket: object.bucket, etag: object.object.eTag, ...status });
			}),
		);
		const byId = [queued, abandoned].map((job) => ({ kind: "caption-job", job_id: job?.id }));
		const second = await runConsumer([later, good[1], ...byId], hold);
		expect(second.result.explicitAcks).toEqual(second.ids);
		for (const key of [later.object.key, queued?.key ?? "", abandoned?.key ?? ""]) {
			expect((await onlyJob(key)).status).toBe("succeeded");
		}

		await expectCountedRows(prefix, [
			{ status: "failed", n: 1 },
			{ status: "succeeded", n: 6 },
		]);
	});

	it("that cannot all be written: the one that fails is retried alone, the others finish and are counted", async () => {
		const prefix = await countedScope("partial");
		const jpeg = await fixture("small.jpg");
		const notifications = await Promise.all(["a", "b", "c"].map((n) => upload(`${prefix}${n}.jpg`, jpeg)));
		const broken = notifications[1]?.object.key ?? "";
		// D1 refuses this one job's finish (as a constraint would): the batch's transaction fails part-way.
		const { ids, result } = await refusing(broken, "succeeded", () =>
			runConsumer(notifications, { env: { WRITE_HOLD_MS: "10000" } }),
		);
		expect(result.retryMessages.map((m) => m.msgId)).toEqual([ids[1]]);
		expect(result.explicitAcks).toEqual([ids[0], ids[2]]);
		const [a, b, c] = await Promise.all(notifications.map((n) => onlyJob(n.object.key)));
		expect([a?.status, b?.status, c?.status]).toEqual(["succeeded", "processing", "succeeded"]);
		const events = await env.DB.prepare(
			`SELECT ${eventJobId()} AS job_id FROM webhook_events WHERE ${eventJobId()} IN (?1, ?2, ?3)`,
		)
			.bind(a?.id, b?.id, c?.id)
			.all()
			.then(parseRows(z.object({ job_id: z.string() })));
		expect(events.map((e) => e.job_id).sort()).toEqual([a?.id, c?.id].sort());

		await expectCountedRows(prefix, [
			{ status: "processing", n: 1 },
			{ status: "succeeded", n: 2 },
		]);
		expect(await jobsForKey(broken)).toHaveLength(1);
	});

	it("that D1 committed but answered with an error: the message is retried, and its next delivery does the write-back", async () => {
		const key = `${await countedScope("committed")}cat.png`;
		const notification = await upload(key, await fixture("small.png"), { output: "tags", "write-back": "sidecar" });
		const status = async () => (await jobsForKey(key))[0]?.status;
		// D1 that loses its answer once: the transaction that finishes the job commits, then errors.
		let lost = false;
		const answerLost = new Proxy(env.DB, {
			get(db, name) {
				if (name !== "batch") {
					const value = Reflect.get(db, name, db);
					return typeof value === "function" ? value.bind(db) : value;
				}
				return async (statements: D1PreparedStatement[]) => {
					const results = await db.batch(statements);
					if (!lost && (await status()) === "succeeded") {
						lost = true;
						throw new Error("D1_ERROR: Network connection lost.");
					}
					return results;
				};
			},
		});
		const first = await runConsumer([notification], { env: { DB: answerLost } });
		expect(lost).toBe(true);
		expect(await status()).toBe("succeeded");
		// Not acknowledged with its write-back undone.
		expect(first.result.retryMessages.map((m) => m.msgId)).toEqual(first.ids);
		expect(await env.BUCKET.head(key.replace(/\.png$/, ".txt"))).toBeNull();

		const second = await runConsumer([notification]);
		expect(second.result.explicitAcks).toEqual(second.ids);
		const job = await onlyJob(key);
		expect(job.write_back_status).toBe("written");
		const sidecar = await env.BUCKET.get(key.replace(/\.png$/, ".txt"));
		expect(await sidecar?.text()).toBe((JSON.parse(job.result ?? "[]") as string[]).join(", "));
	});
});
