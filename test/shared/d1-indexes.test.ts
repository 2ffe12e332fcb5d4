/**
 * Every index D1 holds is read by a query: each one is listed here with the query that reads it
 * (the shape its module runs), and SQLite's EXPLAIN QUERY PLAN of that query must name it. An
 * index costs bytes for every row and a row written on every insert and delete, so one that no
 * query reads (or that a new migration adds without a reader here) fails the first test.
 * The tables' own keys (sqlite_autoindex_…, primary keys) are not listed.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { CURRENT_CAPTION_COLUMNS, CURRENT_CAPTION_JOIN, objectVersions } from "../../shared/captions/version-sql";
import { parseRows } from "../../shared/d1-rows";
import { notificationJobOf } from "../../shared/jobs/notification-once";
import { needsNewJob, standingJobId, versionNotificationJob } from "../../shared/jobs/written-again";

/** Newest first, from a keyset cursor: how workers/status/capped-scan.ts walks its index. */
const NEWEST_FIRST = "created_at <= ?1 AND (created_at < ?1 OR id < ?2) ORDER BY created_at DESC, id DESC LIMIT 21";

const READERS: Record<string, { reader: string; sql: string }> = {
	jobs_created: {
		reader: "GET /v1/jobs without filters (workers/status/jobs/list.ts)",
		sql: `SELECT * FROM jobs INDEXED BY jobs_created WHERE ${NEWEST_FIRST}`,
	},
	jobs_status_created: {
		reader: "GET /v1/jobs?status=failed (or cancelled; workers/status/jobs/list.ts)",
		sql: `SELECT * FROM jobs INDEXED BY jobs_status_created WHERE (status = ?3 AND status IN ('failed', 'cancelled')) AND ${NEWEST_FIRST}`,
	},
	jobs_unfinished: {
		reader:
			"GET /v1/jobs?status=queued (or processing: the status checked on the rows walked; workers/status/jobs/list.ts)",
		sql: `SELECT * FROM jobs INDEXED BY jobs_unfinished WHERE (completed_at IS NULL) AND ${NEWEST_FIRST}`,
	},
	jobs_key_created: {
		reader: "GET /v1/jobs?key=, retention's newer job of a key (workers/consumer/retention-kinds.ts)",
		sql: `SELECT * FROM jobs WHERE key = ?3 AND ${NEWEST_FIRST}`,
	},
	// The notification job of an object version (shared/jobs/store.ts, workers/status/jobs/create.ts;
	// the trigger jobs_notification_once) goes through the same index: see the test below.
	jobs_batch_created: {
		reader: "GET /v1/jobs?batch_id= (workers/status/jobs/list.ts)",
		sql: `SELECT * FROM jobs INDEXED BY jobs_batch_created WHERE batch_id = ?3 AND ${NEWEST_FIRST}`,
	},
	jobs_batch_key: {
		reader: "a batch's results export in key order (workers/status/batches/export.ts)",
		sql: "SELECT * FROM jobs WHERE batch_id = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
	},
	jobs_completed: {
		reader: "GET /v1/stats' inference-time sample (workers/status/jobs/stat-counters.ts)",
		sql: `SELECT completed_at, inference_ms FROM (
				SELECT completed_at, inference_ms, key FROM jobs WHERE completed_at >= ?1 ORDER BY completed_at DESC LIMIT ?2)
			WHERE inference_ms IS NOT NULL`,
	},
	jobs_key_in_flight: {
		reader: "a key's jobs in flight, for its cap (workers/status/jobs/create.ts)",
		sql: "SELECT 1 FROM jobs WHERE key_id = ?1 AND status IN ('queued', 'processing') LIMIT ?2",
	},
	jobs_batch_seq: {
		reader: "a batch's results since a cursor, in completion order (workers/status/batches/export.ts)",
		sql: "SELECT *, batch_seq AS seq FROM jobs WHERE batch_id = ?1 AND batch_seq > ?2 AND batch_seq <= ?4 ORDER BY batch_seq LIMIT ?3",
	},
	batch_skips_seq: {
		reader: "a batch's skipped objects since a cursor (workers/status/batches/export.ts)",
		sql: `SELECT j.*, s.seq AS seq FROM batch_skips s JOIN jobs j ON j.id = s.job_id
			WHERE s.batch_id = ?1 AND s.seq > ?2 AND s.seq <= ?4 ORDER BY s.seq LIMIT ?3`,
	},
	batch_skips_job: {
		reader: "retention: a job a kept batch skipped to stays (workers/consumer/retention-kinds.ts)",
		sql: "SELECT 1 FROM jobs t WHERE t.id = ?1 AND NOT EXISTS (SELECT 1 FROM batch_skips s WHERE s.job_id = t.id)",
	},
	jobs_write_back_pending: {
		reader: "the sweep's succeeded jobs whose write-back is still pending (workers/consumer/stalled-jobs.ts)",
		sql: `SELECT id, batch_id FROM jobs INDEXED BY jobs_write_back_pending
			WHERE write_back_status = 'pending' AND status = 'succeeded' AND completed_at < ?1
				AND (write_back_lease IS NULL OR write_back_lease < ?2) AND id > ?3 ORDER BY id LIMIT ?4`,
	},
	batch_missing_seq: {
		reader: "a batch's missing keys since a cursor (workers/status/batches/export.ts)",
		sql: "SELECT key, seq FROM batch_missing WHERE batch_id = ?1 AND seq > ?2 AND seq <= ?4 ORDER BY seq LIMIT ?3",
	},
	webhook_events_batch: {
		reader: "a batch's latest progress event (shared/batches/progress-events.ts), retention's events of a batch",
		sql: "SELECT id FROM webhook_events WHERE batch_id = ?2 AND type = 'batch.progress' ORDER BY created_at DESC, id DESC LIMIT 1",
	},
	webhook_events_batch_final: {
		reader: "a batch's one final event (shared/batches/settle.ts; its unique constraint)",
		sql: "SELECT id FROM webhook_events WHERE batch_id = ?1 AND type IN ('batch.completed', 'batch.cancelled')",
	},
	webhook_events_job: {
		reader:
			"the event of a job recorded before its id was the job's (shared/webhooks/job-event.ts; its unique constraint)",
		sql: "SELECT id FROM webhook_events WHERE job_id = ?1",
	},
	webhook_events_undispatched: {
		reader: "the outbox sweep (shared/webhooks/outbox.ts)",
		sql: `SELECT id, job_id, batch_id, created_at FROM webhook_events
			WHERE dispatched_at IS NULL AND created_at < ?1 AND (created_at, id) > (?2, ?3) ORDER BY created_at, id LIMIT ?4`,
	},
	webhook_deliveries_once: {
		reader: "an event's deliveries: the fan-out's one per target, retention (workers/webhooks/deliveries.ts)",
		sql: "SELECT * FROM webhook_deliveries WHERE event_id = ?1",
	},
	webhook_deliveries_subscription: {
		reader: "GET /v1/webhooks/{id}/deliveries (workers/status/webhooks/delivery-log.ts)",
		sql: `SELECT d.* FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
			WHERE d.subscription_id = ?3 AND d.created_at <= ?1 AND (d.created_at < ?1 OR d.id < ?2)
			ORDER BY d.created_at DESC, d.id DESC LIMIT 21`,
	},
	webhook_deliveries_pending: {
		reader: "the stalled-delivery sweep (workers/webhooks/deliveries.ts)",
		sql: `SELECT id FROM webhook_deliveries WHERE status = 'pending'
			AND ((next_attempt_at < ?1 AND (lease_expires_at IS NULL OR lease_expires_at < ?3)) OR updated_at < ?2) LIMIT ?4`,
	},
	webhook_subscriptions_created: {
		reader: "the admin's GET /v1/webhooks (workers/status/webhooks/subscriptions.ts)",
		sql: "SELECT * FROM webhook_subscriptions ORDER BY created_at DESC, id DESC LIMIT ?1",
	},
	webhook_subscriptions_key: {
		reader: "a key's GET /v1/webhooks (workers/status/webhooks/subscriptions.ts)",
		sql: `SELECT * FROM webhook_subscriptions AS s INDEXED BY webhook_subscriptions_key
			WHERE s.key_id = ?1 ORDER BY s.created_at DESC, s.id DESC LIMIT ?3`,
	},
	batches_created: {
		reader: "GET /v1/batches (workers/status/batches/store.ts)",
		sql: `SELECT * FROM batches INDEXED BY batches_created WHERE ${NEWEST_FIRST}`,
	},
	batches_status_created: {
		reader: "GET /v1/batches?status= (workers/status/batches/store.ts)",
		sql: `SELECT * FROM batches INDEXED BY batches_status_created WHERE status = ?3 AND ${NEWEST_FIRST}`,
	},
	batches_key_open: {
		reader: "a key's open batches, for its cap (workers/status/batches/store.ts)",
		sql: "SELECT 1 FROM batches WHERE key_id = ?1 AND status IN ('listing', 'running') LIMIT ?2",
	},
	batches_unfinished: {
		reader: "the stalled-listing sweep (workers/consumer/batch-pages.ts)",
		sql: "SELECT id FROM batches WHERE (status = 'listing' OR unsent IS NOT NULL) AND updated_at < ?1 LIMIT ?3",
	},
	idempotency_keys_expires: {
		reader: "each create's clean-up of expired Idempotency-Key answers (workers/status/idempotency.ts)",
		sql: "SELECT id FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2",
	},
	presets_prefix: {
		reader: "POST /v1/presets: one preset per prefix (workers/status/routes/presets.ts; its unique constraint)",
		sql: "SELECT name FROM presets WHERE prefix = ?1",
	},
};

const Named = z.object({ name: z.string() });
const Plan = z.object({ detail: z.string() });

async function plan(sql: string): Promise<string[]> {
	// D1 wants every parameter bound; the plan does not depend on the values.
	const count = Math.max(0, ...[...sql.matchAll(/\?(\d+)/g)].map((m) => Number(m[1])));
	const result = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
		.bind(...Array.from({ length: count }, () => 0))
		.all();
	return parseRows(Plan)(result).map((row) => row.detail);
}

describe("D1 indexes", () => {
	it("every index is one a query reads (none left over, none missing here)", async () => {
		const indexes = await env.DB.prepare(
			"SELECT name FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL AND name NOT LIKE '_cf_%' ORDER BY name",
		)
			.all()
			.then(parseRows(Named));
		expect(indexes.map((i) => i.name)).toEqual(Object.keys(READERS).sort());
	});

	it.each(Object.entries(READERS).map(([index, { reader, sql }]) => [index, reader, sql]))(
		"%s is read by %s",
		async (index, _reader, sql) => {
			const details = await plan(sql);
			expect(
				details.some((d) => new RegExp(`USING (COVERING )?INDEX ${index}\\b`).test(d)),
				details.join("\n"),
			).toBe(true);
		},
	);

	// The sweep names its index (workers/consumer/stalled-jobs.ts): left to itself, SQLite would walk the
	// primary key from the page's last id over every job.
	it("the stalled-job sweep walks the unfinished jobs of jobs_unfinished (no lease index), not every job", async () => {
		const details = await plan(
			`SELECT id, attempts, status FROM jobs INDEXED BY jobs_unfinished WHERE completed_at IS NULL AND status IN ('queued', 'processing')
			AND ((status = 'processing' AND (lease_expires_at < ?1 OR updated_at < ?3)) OR (status = 'queued' AND updated_at < ?2))
			AND id > ?4 ORDER BY id LIMIT ?5`,
		);
		expect(
			details.some((d) => /USING INDEX jobs_unfinished\b/.test(d)),
			details.join("\n"),
		).toBe(true);
		// The partial index is walked whole (it holds only the unfinished jobs), never the table.
		expect(details).not.toContainEqual(expect.stringMatching(/^SCAN jobs$|PRIMARY KEY|sqlite_autoindex_jobs/));
	});

	it("the batches' rate_per_minute walks the last minute of jobs_completed (no index of a batch's results by time)", async () => {
		const details = await plan(
			`SELECT batch_id, count(*) AS n FROM jobs INDEXED BY jobs_completed WHERE completed_at > ?1 AND batch_id IN (SELECT value FROM json_each(?2))
				AND status IN ('succeeded', 'failed') GROUP BY batch_id`,
		);
		expect(
			details.some((d) => /USING INDEX jobs_completed \(completed_at>\?\)/.test(d)),
			details.join("\n"),
		).toBe(true);
	});

	it("the notification job of an object version is found by its key (jobs_key_created), not a table scan", async () => {
		const version = notificationJobOf("?1", "?2", "?3", "?4");
		for (const sql of [
			`SELECT * FROM jobs WHERE ${version}`,
			"SELECT * FROM jobs WHERE bucket = ?1 AND key = ?2 AND etag = ?3 AND source = 'notification' AND (?4 IS NULL OR options_key = ?4) ORDER BY created_at DESC LIMIT 1",
		]) {
			const details = await plan(sql);
			expect(
				details.some((d) => /USING INDEX jobs_key_created\b/.test(d)),
				details.join("\n"),
			).toBe(true);
		}
	});

	it("a version written again: its notification job, the job that stands for it and the key's current caption are read by key, not a table scan", async () => {
		const notified = versionNotificationJob("?1", "?2", "?3", "?4");
		for (const sql of [`SELECT f.id ${notified} AND ${needsNewJob}`, `SELECT ${standingJobId} ${notified}`]) {
			const details = await plan(sql);
			expect(
				details.some((d) => /USING INDEX jobs_key_created\b/.test(d)),
				details.join("\n"),
			).toBe(true);
			expect(details).not.toContainEqual(expect.stringMatching(/^SCAN (f|r|s|c|v|j|jobs|captions)\b/));
		}
	});

	it("a current caption or history held by a job is read by its key (jobs_key_created), not a table scan", async () => {
		for (const sql of [
			`SELECT ${CURRENT_CAPTION_COLUMNS} FROM ${CURRENT_CAPTION_JOIN} WHERE c.bucket = ?1 AND c.key > ?2 ORDER BY c.key LIMIT ?3`,
			objectVersions("?1", "?2"),
		]) {
			const details = await plan(sql);
			expect(
				details.some((d) => /USING INDEX jobs_key_created\b/.test(d)),
				details.join("\n"),
			).toBe(true);
			expect(details).not.toContainEqual(expect.stringMatching(/^SCAN (j|jobs)\b/));
		}
	});

	it("a newest-first walk reads its index backwards, without sorting", async () => {
		for (const index of ["jobs_status_created", "jobs_unfinished", "jobs_batch_created", "batches_created"]) {
			const reader = READERS[index];
			if (!reader) throw new Error(`no reader for ${index}`);
			expect(await plan(reader.sql)).not.toContainEqual(expect.stringContaining("TEMP B-TREE"));
		}
	});

	it("the list of every job walks jobs_created backwards and sorts only the jobs of one millisecond by id", async () => {
		const reader = READERS.jobs_created;
		if (!reader) throw new Error("no reader for jobs_created");
		expect(await plan(reader.sql)).toEqual([
			"SEARCH jobs USING INDEX jobs_created (created_at<?)",
			"USE TEMP B-TREE FOR LAST TERM OF ORDER BY",
		]);
	});
});
