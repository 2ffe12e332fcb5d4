/**
 * Progress with an ETA: a running batch's `rate_per_minute` and `eta_seconds` (never shorter than
 * the model rate limit allows), and the opt-in `batch.progress` webhook, at most once a minute per
 * batch and endpoint. The throttle is shown with the webhooks Worker's own function on chosen
 * clocks (no minute-long waits), and one delivery end to end, verified with `standardwebhooks`.
 */
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ceilingPerMinute } from "../../shared/batches/progress";
import { recordProgress, runningBatchOfJob } from "../../shared/batches/progress-events";
import { Batch, type BatchRow } from "../../shared/batches/schema";
import { emulator } from "../../shared/models/emulator";
import { RateLimitsSetting } from "../../shared/models/rate-limits";
import { parseModelChain } from "../../shared/models/registry";
import { isEventOfJob } from "../../shared/webhooks/job-event";
import { BatchProgressWebhookPayload } from "../../shared/webhooks/schema";
import { recordBatchProgress } from "../../workers/webhooks/batch-progress";
import { call, pageOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { until } from "../support/poll";
import { runConsumer } from "../support/queue";
import { hook, subscribe } from "../webhooks/support";
import { captionJob, getBatch, queuedBatch, settled, waitForBatch } from "./support";

beforeEach(() => emulator.reset());

/** GET /v1/batches/{id} from the real status Worker running with these model rate limits. */
async function batchWithLimits(id: string, limits: string): Promise<Batch> {
	const res = await call("GET", `/v1/batches/${id}`, { env: { MODEL_RATE_LIMITS: limits } });
	expect(res.status).toBe(200);
	return Batch.parse(await res.json());
}

describe("the ETA's floor", () => {
	it("is the rate limit of the chain's first model that writes the batch's language", () => {
		const chain = parseModelChain(undefined);
		const limits = RateLimitsSetting.parse("Image-to-Text=720, Text Generation=300");
		// moondream (Image-to-Text) for English; Mistral Small 3.1 (Text Generation) for German.
		expect([null, "en-GB", "de"].map((language) => ceilingPerMinute(chain, limits, language))).toEqual([720, 720, 300]);
		expect(ceilingPerMinute(chain, RateLimitsSetting.parse("off"), "de")).toBeNull();
	});
});

describe("rate_per_minute and eta_seconds", () => {
	it("a paced batch shows a rate and a plausible ETA while it runs, and 0 s left once it ends", async () => {
		const { batch, jobs } = await queuedBatch(8);
		const created = await getBatch(batch.id);
		expect(created).toMatchObject({ rate_per_minute: null, eta_seconds: null });

		// The consumer paces moondream at 120 a minute with a burst of 1: one call about every half second.
		const limits = "Image-to-Text=120, Text Generation=60";
		const run = runConsumer(
			jobs.map((j) => ({ kind: "caption-job", job_id: j.id })),
			{ env: { CAPTION_JOBS: env.HELD_MESSAGES, MODEL_RATE_LIMITS: limits, MODEL_BURST: "1" } },
		);
		const midway = await until("the batch did not get halfway", async () => {
			const b = await batchWithLimits(batch.id, limits);
			return b.counts.succeeded >= 3 && b.counts.queued + b.counts.processing >= 2 ? b : undefined;
		});
		await run;
		const left = midway.counts.queued + midway.counts.processing;
		const rate = midway.rate_per_minute ?? 0;
		expect(rate).toBeGreaterThan(0);
		// Measured over the batch's life so far (younger than a minute): no faster than the pace allows, with its burst.
		expect(rate).toBeLessThanOrEqual(240);
		expect(midway.eta_seconds).not.toBeNull();
		const eta = midway.eta_seconds ?? 0;
		// What is left at the measured rate, and never less than at the limit's 120 a minute.
		expect(eta).toBe(Math.ceil(Math.max((left * 60) / rate, (left * 60) / 120)));
		expect(eta).toBeGreaterThanOrEqual(Math.ceil(left / 2));

		const done = await waitForBatch(batch.id, settled);
		expect(done).toMatchObject({ status: "completed", rate_per_minute: null, eta_seconds: 0 });
	});

	it("the ETA is never shorter than the model rate limit allows, however fast the batch has gone", async () => {
		const { batch, jobs } = await queuedBatch(6);
		// Three jobs finish at once, unpaced: a measured rate far above a limit of 6 a minute.
		for (const job of jobs.slice(0, 3)) await captionJob(job.id);
		const unlimited = await batchWithLimits(batch.id, "off");
		const rate = unlimited.rate_per_minute ?? 0;
		expect(rate).toBeGreaterThan(6);
		expect(unlimited.eta_seconds).toBe(Math.ceil((3 * 60) / rate));
		const limited = await batchWithLimits(batch.id, "Image-to-Text=6");
		// Three left at six a minute: thirty seconds at the least.
		expect(limited.eta_seconds).toBe(30);
		// The list carries the same figures.
		// Only this test's batch is parsed: other files' batches share the storage (docs/testing.md).
		const Page = pageOf(z.object({ id: z.string() }).loose());
		let found: unknown;
		let cursor: string | null = null;
		do {
			const query = new URLSearchParams({ status: "running", limit: "100", ...(cursor ? { cursor } : {}) });
			const page = await parsed(await call("GET", `/v1/batches?${query}`), Page);
			found = page.data.find((b) => b.id === batch.id);
			cursor = page.next_cursor;
		} while (!found && cursor);
		const mine = Batch.parse(found);
		expect(mine.rate_per_minute).toBeGreaterThan(0);
	});
});

describe("batch.progress webhooks", () => {
	const pace = { chain: parseModelChain(undefined), limits: RateLimitsSetting.parse("off") };

	/**
	 * The batch's progress events recorded at `since` or later: a test's own, on its chosen clock
	 * (hours ahead), not those the real queues record meanwhile as the test's captions are fanned out.
	 */
	async function progressEvents(batchId: string, since = 0) {
		const { results } = await env.DB.prepare(
			"SELECT id, payload FROM webhook_events WHERE batch_id = ? AND type = 'batch.progress' AND created_at >= ? ORDER BY created_at",
		)
			.bind(batchId, since)
			.all<{ id: string; payload: string }>();
		return results;
	}

	async function deliveryTargets(ids: string[]): Promise<string[]> {
		const { results } = await env.DB.prepare(
			"SELECT subscription_id FROM webhook_deliveries WHERE id IN (SELECT value FROM json_each(?)) ORDER BY subscription_id",
		)
			.bind(JSON.stringify(ids))
			.all<{ subscription_id: string }>();
		return results.map((r) => r.subscription_id);
	}

	it("go at most once a minute per batch and subscription, only to subscriptions that ask for them", async () => {
		// Both batches lie under one folder, the subscriptions' prefix.
		const folder = uniqueKey("progress/");
		const one = await queuedBatch(4, false, `${folder}one/`);
		const two = await queuedBatch(2, false, `${folder}two/`);
		const first = await subscribe({ url: hook("progress-a").url, events: ["batch.progress"], prefix: folder });
		const second = await subscribe({
			url: hook("progress-b").url,
			events: ["batch.progress", "batch.completed"],
			prefix: folder,
		});
		const elsewhere = await subscribe({
			url: hook("progress-elsewhere").url,
			events: ["batch.progress"],
			prefix: `${folder}two/`,
		});
		const jobsOnly = await subscribe({ url: hook("jobs-only").url, events: ["job.succeeded"], prefix: folder });
		const wanted = [first.id, second.id].sort();

		await captionJob(one.jobs[0]?.id ?? "");
		await captionJob(two.jobs[0]?.id ?? "");
		const t = Date.now() + 3_600_000;
		const at = (batch: typeof one, offsetMs: number) =>
			recordBatchProgress(env.DB, batch.jobs[0]?.id ?? "", pace, t + offsetMs).then((r) => r.deliveries);

		// Other tests' subscriptions without a prefix may want every batch's progress too: count only ours.
		const ours = async (ids: string[]) =>
			(await deliveryTargets(ids)).filter((id) => [...wanted, jobsOnly.id, elsewhere.id].includes(id));
		expect(await ours(await at(one, 0))).toEqual(wanted);
		expect(await ours(await at(one, 30_000))).toEqual([]);
		expect(await ours(await at(one, 59_999))).toEqual([]);
		// Another batch has its own minute (and is inside the narrower subscription's prefix).
		expect(await ours(await at(two, 30_000))).toEqual([...wanted, elsewhere.id].sort());
		expect(await ours(await at(one, 60_000))).toEqual(wanted);
		// A subscription made later has its own minute too.
		const late = await subscribe({ url: hook("progress-late").url, events: ["batch.progress"], prefix: folder });
		const withLate = async (ids: string[]) => (await deliveryTargets(ids)).filter((id) => id === late.id);
		expect(await withLate(await at(one, 70_000))).toEqual([late.id]);
		expect(await withLate(await at(one, 80_000))).toEqual([]);

		// Each event is the Batch JSON of that moment, kept as it was sent.
		const events = await progressEvents(one.batch.id);
		expect(events.length).toBeGreaterThanOrEqual(3);
		for (const event of events) {
			const payload = BatchProgressWebhookPayload.parse(JSON.parse(event.payload));
			expect(payload.data).toMatchObject({ id: one.batch.id, status: "running", counts: { succeeded: 1, queued: 3 } });
		}

		// Once the batch has ended, its final event says the rest: no more progress.
		for (const job of one.jobs.slice(1)) await captionJob(job.id);
		await waitForBatch(one.batch.id, settled);
		expect(await at(one, 600_000)).toEqual([]);
	});

	it("a batch's progress is recorded for the event stream at most every 5 s; a subscription due in between gets the latest", async () => {
		const { batch, jobs } = await queuedBatch(2);
		await captionJob(jobs[0]?.id ?? "");
		const sub = await subscribe({
			url: hook("progress-beside-stream").url,
			events: ["batch.progress"],
			prefix: batch.prefix ?? "",
		});
		const t = Date.now() + 7_200_000;
		const at = async (offsetMs: number, target: string) =>
			(
				await deliveryTargets((await recordBatchProgress(env.DB, jobs[0]?.id ?? "", pace, t + offsetMs)).deliveries)
			).filter((id) => id === target);
		expect(await at(0, sub.id)).toEqual([sub.id]);
		expect(await progressEvents(batch.id, t)).toHaveLength(1);
		expect(await at(4_999, sub.id)).toEqual([]);
		expect(await progressEvents(batch.id, t)).toHaveLength(1);
		expect(await at(5_000, sub.id)).toEqual([]);
		const events = await progressEvents(batch.id, t);
		expect(events).toHaveLength(2);
		const body = BatchProgressWebhookPayload.parse(JSON.parse(events[1]?.payload ?? "null"));
		expect(body).toMatchObject({ timestamp: new Date(t + 5_000).toISOString(), data: { id: batch.id } });
		expect(body.data.counts).toMatchObject({ succeeded: 1, queued: 1 });
		// A subscription whose minute comes while the stream's five seconds have not: the latest event, no new one.
		const later = await subscribe({
			url: hook("progress-later").url,
			events: ["batch.progress"],
			prefix: batch.prefix ?? "",
		});
		const [delivery] = (await recordBatchProgress(env.DB, jobs[0]?.id ?? "", pace, t + 6_000)).deliveries;
		expect(await progressEvents(batch.id, t)).toHaveLength(2);
		const row = await env.DB.prepare("SELECT event_id, subscription_id FROM webhook_deliveries WHERE id = ?")
			.bind(delivery ?? "")
			.first<{ event_id: string; subscription_id: string }>();
		expect(row).toEqual({ event_id: events[1]?.id, subscription_id: later.id });
		// Once the batch has ended, nothing more.
		await captionJob(jobs[1]?.id ?? "");
		await waitForBatch(batch.id, settled);
		expect((await recordBatchProgress(env.DB, jobs[0]?.id ?? "", pace, t + 600_000)).deliveries).toEqual([]);
		expect(await progressEvents(batch.id, t)).toHaveLength(2);
	});

	it("a progress read while the batch ran but recorded after its last job finished records no event and no delivery", async () => {
		const { batch, jobs } = await queuedBatch(2);
		await captionJob(jobs[0]?.id ?? "");
		const sub = await subscribe({
			url: hook("progress-stale").url,
			events: ["batch.progress"],
			prefix: batch.prefix ?? "",
		});
		// What the webhooks Worker read when the first job's event was fanned out …
		const running = await runningBatchOfJob(env.DB, jobs[0]?.id ?? "");
		expect(running?.completed_at).toBeNull();
		// … then the last job finishes and completes the batch before the progress is recorded.
		await captionJob(jobs[1]?.id ?? "");
		await waitForBatch(batch.id, settled);
		const before = await progressEvents(batch.id);
		const recorded = await recordProgress(env.DB, running as BatchRow, [sub], pace, () => `dlv_${crypto.randomUUID()}`);
		expect(recorded).toEqual({ deliveries: [], event: null });
		expect(await progressEvents(batch.id)).toEqual(before);
		// On the stream the batch's final event stays its last.
		const { results } = await env.DB.prepare(
			"SELECT type FROM webhook_events WHERE batch_id = ? ORDER BY created_at, id",
		)
			.bind(batch.id)
			.all<{ type: string }>();
		expect(results.at(-1)?.type).toBe("batch.completed");
	});

	it("a subscriber receives batch.progress signed, with the batch's counts, rate and ETA", async () => {
		const { batch, jobs } = await queuedBatch(3);
		const receiver = hook("progress-e2e");
		const sub = await subscribe({ url: receiver.url, events: ["batch.progress"], prefix: batch.prefix ?? "" });
		await captionJob(jobs[0]?.id ?? "");
		// The job's event goes through the real webhook-deliveries queue; its fan-out sends the progress.
		const [request] = await receiver.waitFor(1);
		const payload = BatchProgressWebhookPayload.parse(
			new Webhook(sub.secret).verify(request?.body ?? "", request?.headers ?? {}),
		);
		expect(payload).toMatchObject({ type: "batch.progress", data: { id: batch.id, status: "running" } });
		expect(payload.data.counts).toMatchObject({ succeeded: 1, queued: 2 });
		expect(payload.data.rate_per_minute).toBeGreaterThan(0);
		expect(payload.data.eta_seconds).toBeGreaterThan(0);
		// The next job within the minute sends nothing more to it.
		await captionJob(jobs[1]?.id ?? "");
		await until("the second job's event was not fanned out", async () =>
			(await env.DB.prepare(`SELECT dispatched_at FROM webhook_events WHERE ${isEventOfJob("", "?1")}`)
				.bind(jobs[1]?.id)
				.first<number>("dispatched_at"))
				? true
				: undefined,
		);
		expect(await receiver.received()).toHaveLength(1);
	});
});
