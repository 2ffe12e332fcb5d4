/**
 * The outbox never abandons an event: the webhooks Worker's sweep pages through the whole backlog,
 * however old, within its time budget (stopping at the budget, going on next run); deliveries of a
 * restarted local stack are sent again at once; the backlog's size and age show in GET /v1/stats.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { eventJobId } from "../../shared/webhooks/job-event";
import { readOutboxBacklog } from "../../shared/webhooks/outbox";
import { DeliveryRow } from "../../shared/webhooks/schema";
import { recoverWebhooks } from "../../workers/webhooks/recovery";
import { sweepWebhooks } from "../../workers/webhooks/sweeper";
import { call, createKey, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { until } from "../support/poll";
import { dispatchOne, finishedJob, hook, subscribe, verified } from "./support";

const DAY = 24 * 60 * 60 * 1000;

/** The prefixes of undispatched(): their events left undispatched at the end are removed (afterAll below). */
const backlogs: string[] = [];

/** `n` finished jobs under `prefix` whose events were never sent, created at `at`, `at + 1`, … */
async function undispatched(prefix: string, n: number, at: number) {
	backlogs.push(prefix);
	const out: { jobId: string; eventId: string }[] = [];
	for (let i = 0; i < n; i++) out.push(await finishedJob(`${prefix}${i}.png`, "succeeded", { now: at + i }));
	return out;
}

const countUndispatched = (prefix: string) =>
	env.DB.prepare(
		`SELECT COUNT(*) AS n FROM webhook_events e JOIN jobs j ON j.id = ${eventJobId("e.")}
		WHERE j.key LIKE ?1 AND e.dispatched_at IS NULL`,
	)
		.bind(`${prefix}%`)
		.first("n")
		.then((n) => z.number().parse(n));

// The budget test's events went to a queue nobody reads and the backlog test's were never sent: no
// fan-out will come for them, so the next file of the runtime (test/support/quiet.ts waits for every
// event's fan-out) would wait for ever.
afterAll(async () => {
	if (backlogs.length === 0) return;
	await env.DB.batch(
		backlogs.map((prefix) =>
			env.DB.prepare(
				`DELETE FROM webhook_events WHERE dispatched_at IS NULL AND id IN (SELECT e.id FROM webhook_events e
				JOIN jobs j ON j.id = ${eventJobId("e.")} WHERE j.key LIKE ?1)`,
			).bind(`${prefix}%`),
		),
	);
});

describe("the outbox sweep", () => {
	it("sends a backlog larger than a page and older than 24 hours in one run, and every event is dispatched", async () => {
		const prefix = uniqueKey("old-backlog/");
		const at = Date.now() - 3 * DAY - Math.floor(Math.random() * DAY);
		await undispatched(prefix, 130, at);
		expect(await countUndispatched(prefix)).toBe(130);

		const swept = await sweepWebhooks(env, Date.now(), { pageSize: 50 });
		expect(swept.events).toBeGreaterThanOrEqual(130);
		expect(swept.truncated).toBe(false);
		// Through the real queue: the fan-out dispatches each one.
		await until(
			"every event of the backlog dispatched",
			async () => ((await countUndispatched(prefix)) === 0 ? true : undefined),
			30_000,
		);
	});

	it("stops at its time budget and the next run goes on from where it stopped, until a pass is complete", async () => {
		const prefix = uniqueKey("budget/");
		// Older than anything else in this database, so these are the first pages.
		const at = Date.now() - 400 * DAY - Math.floor(Math.random() * DAY);
		const held = { ...env, WEBHOOK_DELIVERIES: env.HELD_MESSAGES };
		const events = await undispatched(prefix, 25, at);
		const cursor = () => env.DB.prepare("SELECT id FROM sweep_cursors WHERE name = 'outbox'").first("id");
		// Nothing gets dispatched here (the messages go to a queue nobody reads): only the cursor moves on.
		const first = await sweepWebhooks(held, Date.now(), { pageSize: 10, budgetMs: 0 });
		expect(first).toMatchObject({ events: 10, truncated: true });
		expect(await cursor()).toBe(events[9]?.eventId);
		const second = await sweepWebhooks(held, Date.now(), { pageSize: 10, budgetMs: 0 });
		expect(second).toMatchObject({ events: 10, truncated: true });
		expect(await cursor()).toBe(events[19]?.eventId);
		// A run with time goes to the end of the backlog and forgets the cursor: the next pass starts from the oldest.
		const third = await sweepWebhooks(held, Date.now(), { pageSize: 10 });
		expect(third.events).toBeGreaterThanOrEqual(5);
		expect(third.truncated).toBe(false);
		expect(await cursor()).toBeNull();
		const again = await sweepWebhooks(held, Date.now(), { pageSize: 10, budgetMs: 0 });
		expect(again).toMatchObject({ events: 10, truncated: true });
		expect(await cursor()).toBe(events[9]?.eventId);
		await sweepWebhooks(held, Date.now(), { pageSize: 10 });
	});

	it("a delivery its sender held when the local stack died is sent again at once after a restart", async () => {
		const receiver = hook("held-by-dead-sender");
		const prefix = uniqueKey("restart/");
		const sub = await subscribe({ url: receiver.url, prefix });
		const { jobId, eventId } = await finishedJob(`${prefix}a.png`, "succeeded");
		const deliveryId = await dispatchOne(eventId);
		const restartedAt = Date.now();
		// Claimed by a sender of the old process a moment before the restart; its lease is still live.
		await env.DB.prepare(
			`UPDATE webhook_deliveries SET attempts = 1, lease_token = 'old-process', lease_expires_at = ?2, updated_at = ?3
			WHERE id = ?1`,
		)
			.bind(deliveryId, restartedAt + 60_000, restartedAt - 1_000)
			.run();

		const row = () =>
			env.DB.prepare("SELECT * FROM webhook_deliveries WHERE id = ?")
				.bind(deliveryId)
				.first()
				.then(parseRow(DeliveryRow));
		// The production cut-offs leave it to its (live) lease.
		await recoverWebhooks(env, {});
		expect(await row()).toMatchObject({ lease_token: "old-process", updated_at: restartedAt - 1_000 });
		const report = await recoverWebhooks(env, { restarted_at: restartedAt });
		expect(report.deliveries_resent).toBeGreaterThanOrEqual(1);
		const [request] = await receiver.waitFor(1);
		expect(request?.headers["webhook-id"]).toBe(deliveryId);
		expect(verified(sub.secret, request!).data.id).toBe(jobId);
		const delivery = await until("the delivery to settle", async () => {
			const settled = await row();
			return settled?.status === "succeeded" ? settled : undefined;
		});
		expect(delivery.attempts).toBe(2);
	});
});

describe("the delivery sweep", () => {
	it("sends a pending delivery overdue by three days (the webhooks Worker was down): there is no horizon", async () => {
		const receiver = hook("overdue-three-days");
		const prefix = uniqueKey("overdue/");
		const sub = await subscribe({ url: receiver.url, prefix });
		const longAgo = Date.now() - 3 * DAY;
		const { jobId, eventId } = await finishedJob(`${prefix}a.png`, "succeeded", { now: longAgo });
		const deliveryId = await dispatchOne(eventId);
		// Its message was lost when the outage began; nothing has touched it since.
		await env.DB.prepare("UPDATE webhook_deliveries SET next_attempt_at = ?2, updated_at = ?2 WHERE id = ?1")
			.bind(deliveryId, longAgo)
			.run();

		const swept = await sweepWebhooks(env, Date.now());
		expect(swept.deliveries).toBeGreaterThanOrEqual(1);
		const [request] = await receiver.waitFor(1);
		expect(request?.headers["webhook-id"]).toBe(deliveryId);
		expect(verified(sub.secret, request!).data.id).toBe(jobId);
	});
});

describe("GET /v1/stats shows the outbox backlog", () => {
	it("its size and the age of its oldest event, to the admin and unscoped keys only", async () => {
		const prefix = uniqueKey("stats-backlog/");
		// The oldest event of this database (400+ days), so its age is the backlog's.
		const at = Date.now() - 500 * DAY;
		await undispatched(prefix, 2, at);
		const backlog = await readOutboxBacklog(env.DB);
		expect(backlog.undispatched).toBeGreaterThanOrEqual(2);
		expect(backlog.oldest_age_seconds).toBeGreaterThanOrEqual(500 * 86_400);

		const Body = z.object({
			webhook_outbox: z
				.object({ undispatched: z.number(), capped: z.boolean(), oldest_age_seconds: z.number().nullable() })
				.nullable(),
		});
		const admin = await parsed(await call("GET", "/v1/stats"), Body);
		expect(admin.webhook_outbox?.undispatched).toBeGreaterThanOrEqual(2);
		expect(admin.webhook_outbox?.oldest_age_seconds).toBeGreaterThanOrEqual(500 * 86_400);
		const scoped = await createKey(uniqueKey("scoped/"));
		const limited = await parsed(await call("GET", "/v1/stats", { token: scoped.token }), Body);
		expect(limited.webhook_outbox).toBeNull();
	});
});
