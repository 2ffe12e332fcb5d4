/**
 * Lists read a bounded number of rows whatever their filters and the size of the table:
 * thousands of jobs, filters that match none of them or only a few at the far end of the table,
 * every filter combination of GET /v1/jobs; each page's rows examined (D1's meta.rows_read) stay
 * under MAX_LIST_ROWS_READ, and following the cursors still finds exactly the matching jobs.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { Batch } from "../../shared/batches/schema";
import { parseRows } from "../../shared/d1-rows";
import { Job, JobRow } from "../../shared/jobs/schema";
import { WebhookSubscription } from "../../shared/webhooks/schema";
import { batchCursor, listBatches } from "../../workers/status/batches/store";
import { SCAN_ROWS } from "../../workers/status/capped-scan";
import { type JobFilter, jobCursor, listJobs, MAX_LIST_ROWS_READ } from "../../workers/status/jobs/list";
import { deliveryCursor, listDeliveries } from "../../workers/status/webhooks/delivery-log";
import { listSubscriptions, MAX_SUBSCRIPTIONS_LISTED } from "../../workers/status/webhooks/subscriptions";
import { uniqueKey } from "../support/fixtures";
import { insertJobs } from "../support/jobs";
import { call, createKey, pageOf, parsed } from "./support";

const JOBS = 5000;
const HOUR = 3_600_000;
const base = Date.now() - 48 * HOUR;
const big = uniqueKey("big/");
const few = uniqueKey("few/");
const other = uniqueKey("other/");
const batchId = "bat_01JD2X6B8J3W4Q5R6S7T8V9BIG";

/** Every page of a listing, following its cursors; each page's rows read must stay under the bound. */
async function walk(filter: JobFilter, limit = 50) {
	const ids: string[] = [];
	const reads: number[] = [];
	let after = null;
	for (let pages = 0; pages < 200; pages++) {
		const page = await listJobs(env.DB, filter, limit, after);
		ids.push(...page.rows.map((r) => r.id));
		reads.push(page.rowsRead);
		if (page.nextCursor === null) return { ids, reads, pages: pages + 1 };
		after = jobCursor.decode(page.nextCursor);
	}
	throw new Error("too many pages");
}

async function expected(where: string, ...params: (string | number)[]): Promise<string[]> {
	const rows = await env.DB.prepare(`SELECT id FROM jobs WHERE ${where} ORDER BY created_at DESC, id DESC`)
		.bind(...params)
		.all()
		.then(parseRows(JobRow.pick({ id: true })));
	return rows.map((r) => r.id);
}

describe("lists read a bounded number of rows", () => {
	beforeAll(async () => {
		// The oldest three jobs are the only failed ones, under `few/`; then a large succeeded batch
		// under `big/`, one job a second; the newest are 1,500 succeeded jobs under `other/`.
		await insertJobs([
			...Array.from({ length: 3 }, (_, i) => ({
				key: `${few}${i}.jpg`,
				status: "failed" as const,
				created_at: base + i,
			})),
			...Array.from({ length: JOBS }, (_, i) => ({
				key: `${big}${String(i).padStart(5, "0")}.jpg`,
				source: "batch" as const,
				batch_id: batchId,
				status: "succeeded" as const,
				created_at: base + 1000 + i * 1000,
			})),
			...Array.from({ length: 1500 }, (_, i) => ({
				key: `${other}${i}.jpg`,
				status: "succeeded" as const,
				created_at: base + 1000 + JOBS * 1000 + i,
			})),
		]);
	}, 120_000);

	const cases: [string, JobFilter, string, (string | number)[]][] = [
		["status matching only the oldest jobs", { prefixes: [], status: "failed" }, "status = 'failed'", []],
		[
			"a dense prefix with a status matching none",
			{ prefixes: [big], status: "queued" },
			"substr(key, 1, length(?1)) = ?1 AND status = 'queued'",
			[big],
		],
		[
			"a dense prefix with a status matching a few at the far end (the scope's prefix as well)",
			{ prefixes: [big.slice(0, 2), big], status: "failed" },
			"substr(key, 1, length(?1)) = ?1 AND status = 'failed'",
			[big],
		],
		[
			"a batch with a status matching none",
			{ prefixes: [], batchId, status: "failed" },
			"batch_id = ?1 AND status = 'failed'",
			[batchId],
		],
		[
			"a batch with a prefix matching none",
			{ prefixes: [few], batchId },
			"batch_id = ?1 AND substr(key, 1, length(?2)) = ?2",
			[batchId, few],
		],
		[
			"a dense prefix and a time range",
			{ prefixes: [big], createdAfter: base + 3_000_000, createdBefore: base + 3_200_000 },
			"substr(key, 1, length(?1)) = ?1 AND created_at > ?2 AND created_at < ?3",
			[big, base + 3_000_000, base + 3_200_000],
		],
		[
			"a time range with a status matching none",
			{ prefixes: [], status: "cancelled", createdAfter: base },
			"status = 'cancelled' AND created_at > ?1",
			[base],
		],
		[
			"an exact key with a status matching none",
			{ prefixes: [], key: `${big}00007.jpg`, status: "failed" },
			"key = ?1 AND status = 'failed'",
			[`${big}00007.jpg`],
		],
		[
			"a sparse prefix matching a few at the far end, with a status",
			{ prefixes: [few], status: "failed" },
			"substr(key, 1, length(?1)) = ?1 AND status = 'failed'",
			[few],
		],
		["no filter at all", { prefixes: [] }, "created_at >= ?1", [base]],
	];

	for (const [name, filter, where, params] of cases) {
		it(`${name}: every page under the bound, and exactly the matching jobs`, async () => {
			const { ids, reads } = await walk(filter);
			const want = await expected(where, ...params);
			// No filter at all lists other tests' jobs too: compare only this file's.
			expect(name === "no filter at all" ? ids.filter((id) => want.includes(id)) : ids).toEqual(want);
			expect(Math.max(...reads)).toBeLessThanOrEqual(MAX_LIST_ROWS_READ);
		});
	}

	it("a page may hold fewer jobs than the limit (even none) and still a cursor, over HTTP too", async () => {
		// A key limited to `big/` lists succeeded jobs: the 1,500 newest succeeded jobs are not its own.
		const key = await createKey(big);
		const first = await parsed(
			await call("GET", "/v1/jobs?status=succeeded&limit=10", { token: key.token }),
			pageOf(Job),
		);
		expect(first.data).toEqual([]);
		expect(first.next_cursor).not.toBeNull();
		const pages = [first];
		while (pages.at(-1)?.data.length === 0 && pages.length < 5) {
			const cursor = pages.at(-1)?.next_cursor ?? "";
			const res = await call("GET", `/v1/jobs?status=succeeded&limit=10&cursor=${cursor}`, { token: key.token });
			pages.push(await parsed(res, pageOf(Job)));
		}
		const found = pages.at(-1)?.data ?? [];
		expect(pages.length).toBeLessThanOrEqual(Math.ceil(1500 / SCAN_ROWS) + 1);
		expect(found.map((j) => j.key)).toEqual(
			Array.from({ length: 10 }, (_, i) => `${big}${String(JOBS - 1 - i).padStart(5, "0")}.jpg`),
		);
	});

	it("GET /v1/batches for a scope with none among 1,200 batches: capped pages with a cursor, then null", async () => {
		const scope = uniqueKey("no-batches/");
		await env.DB.prepare(
			`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1199)
			INSERT INTO batches (id, status, bucket, prefix, key_prefix, metadata, skip_captioned, created_at, updated_at)
			SELECT 'bat_' || printf('%026d', i) || ?1, 'running', 'images', 'elsewhere/' || i, 'elsewhere/' || i, '{}', 0,
				?2 + i, ?2 + i FROM n`,
		)
			.bind(scope.replace(/\W/g, ""), Date.now())
			.run();
		const reads: number[] = [];
		let after = null;
		let pages = 0;
		for (; pages < 10; pages++) {
			const page = await listBatches(env.DB, { status: "running", scope }, 20, after);
			expect(page.rows).toEqual([]);
			reads.push(page.rowsRead);
			if (page.nextCursor === null) break;
			after = batchCursor.decode(page.nextCursor);
		}
		expect(pages).toBeGreaterThanOrEqual(1);
		expect(Math.max(...reads)).toBeLessThanOrEqual(2 * SCAN_ROWS + 2 * 21);

		const key = await createKey(scope);
		const res = await call("GET", "/v1/batches?status=running", { token: key.token });
		expect(res.status).toBe(200);
		const first = await parsed(res, pageOf(Batch));
		expect(first.data).toEqual([]);
		expect(first.next_cursor).not.toBeNull();
	});

	it("a subscription's deliveries: every page an index range, however deep", async () => {
		const sub = `wh_${uniqueKey("bounded").replace(/\W/g, "")}`;
		const now = Date.now();
		// One event each: a subscription gets one delivery of an event. Each event was dispatched (its
		// fan-out made the delivery), so no file after this one waits for its fan-out.
		await env.DB.batch([
			env.DB.prepare(
				`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)
				INSERT INTO webhook_events (id, job_id, type, created_at, dispatched_at)
				SELECT 'evt_' || ?1 || printf('%05d', i), 'evt_' || ?1 || printf('%05d', i), 'job.succeeded', ?2, ?2 FROM n`,
			).bind(sub, now),
			env.DB.prepare(
				`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)
				INSERT INTO webhook_deliveries (id, event_id, subscription_id, status, created_at, updated_at)
				SELECT 'msg_' || ?1 || printf('%05d', i), 'evt_' || ?1 || printf('%05d', i), ?1, 'succeeded',
					?2 - i, ?2 FROM n`,
			).bind(sub, now),
		]);
		const ids = new Set<string>();
		let after = null;
		let pages = 0;
		for (; pages < 40; pages++) {
			const page = await listDeliveries(env.DB, sub, 100, after);
			for (const d of page.data) ids.add(d.id);
			expect(page.rowsRead).toBeLessThanOrEqual(4 * 101);
			if (page.nextCursor === null) break;
			after = deliveryCursor.decode(page.nextCursor);
		}
		expect(ids.size).toBe(3000);
		expect(pages).toBe(29);
	});
	it("GET /v1/webhooks for a key among 2,000 other tenants' subscriptions reads only its own", async () => {
		const tag = uniqueKey("subs").replace(/\W/g, "");
		const scope = `${tag}/mine/`;
		const now = Date.now();
		await env.DB.prepare(
			`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)
			INSERT INTO webhook_subscriptions (id, url, events, prefix, secret, status, created_at, updated_at)
			SELECT 'wh_' || ?1 || printf('%05d', i), 'https://example.com/hook', '["job.succeeded"]',
				CASE WHEN i % 2 = 0 THEN ?1 || '/others-' || i || '/' ELSE NULL END, 'sealed', 'active', ?2 + i, ?2 + i FROM n`,
		)
			.bind(tag, now)
			.run();
		const key = await createKey(scope);
		const mine: string[] = [];
		for (const sub of ["a/", "b/", ""]) {
			const res = await call("POST", "/v1/webhooks", {
				token: key.token,
				json: { url: "https://example.com/mine", events: ["job.succeeded"], prefix: `${scope}${sub}` },
			});
			expect(res.status).toBe(201);
			mine.push((await res.json<{ id: string }>()).id);
		}

		const scoped = await listSubscriptions(env.DB, { scope, keyId: key.id });
		expect(scoped.data.map((s) => s.id).sort()).toEqual([...mine].sort());
		expect(scoped.rowsRead).toBeLessThanOrEqual(2 * mine.length + 2);
		const admin = await listSubscriptions(env.DB, { scope: null, keyId: null });
		expect(admin.data.length).toBe(MAX_SUBSCRIPTIONS_LISTED);
		expect(admin.rowsRead).toBeLessThanOrEqual(MAX_SUBSCRIPTIONS_LISTED + 1);

		const res = await call("GET", "/v1/webhooks", { token: key.token });
		const listed = await parsed(res, pageOf(WebhookSubscription));
		expect(listed.data.map((s) => s.id).sort()).toEqual([...mine].sort());
	});
});
