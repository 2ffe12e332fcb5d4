/**
 * The batch lister: one `batch-listing` message lists one page of a batch (1,000 objects of its
 * prefix from R2, or 1,000 of its given keys, each looked up with a HEAD), commits the page's jobs
 * with the listing checkpoint (batch-pages.ts), then sends their caption messages and the message
 * for the next page. D1 holds the only state that matters, so listing resumes wherever it stopped:
 *
 * - message page = pages_listed: list and commit the page (one winner if two try at once);
 * - message page = pages_listed - 1 with the page's job ids still recorded: the page committed but
 *   its follow-up may not have finished (the Worker died): send what it should have sent;
 * - anything else (an older page, a batch no longer listing): a duplicate, acknowledged.
 *
 * A batch made with an API key counts against it: a page lists at most the key's room under
 * MAX_JOBS_IN_FLIGHT, and with no room (or when the commit finds the room taken) the page is held:
 * its message comes back after BATCH_HOLD_SECONDS, until jobs of the key have finished.
 *
 * Why a queue and not Workflows: see docs/batches.md ("How listing works").
 */
import { getBatchRow } from "../../shared/batches/read";
import { type BatchRow, recaptionOf } from "../../shared/batches/schema";
import { batchEventMessage, type SettledBatch } from "../../shared/batches/settle";
import { recaptionSkips } from "../../shared/captions/recaption";
import { notifyEventHub } from "../../shared/events/notify";
import { countJobsInFlight } from "../../shared/jobs/in-flight";
import { effectivePrompt } from "../../shared/jobs/options";
import { errorMessage, log } from "../../shared/log";
import { isSidecarLike } from "../../shared/outputs/sidecar";
import { BatchPageMessage, batchPage } from "../../shared/queue/batch-listing";
import type { CaptionRequest } from "../../shared/queue/caption-jobs";
import { mapConcurrent } from "../../shared/queue/concurrency";
import { ACK, type Outcome } from "../../shared/queue/runner";
import { sendAll } from "../../shared/queue/send";
import {
	alreadyCaptioned,
	batchKeys,
	clearUnsent,
	commitPage,
	commitPlannedPage,
	type ListedObject,
	type PagePlan,
	stillQueued,
	takeStalledListings,
	touchListing,
} from "./batch-pages";
import type { ConsumerSettings } from "./config";

/** HEADs of a keys page in flight at once. */
const HEAD_CONCURRENCY = 25;

/** The objects of the page (at most `limit`) that starts at the checkpoint, and where the next page starts. */
async function listPage(
	env: ConsumerEnv,
	batch: BatchRow,
	settings: ConsumerSettings,
	limit: number,
): Promise<{ objects: ListedObject[]; missing: string[]; nextCursor: string | null }> {
	const prompts = batch.skip_captioned === 1;
	const promptOf = (metadata: Record<string, string> | undefined) =>
		prompts ? { prompt: effectivePrompt(batch, metadata ?? {}, settings.DEFAULT_PROMPT) } : {};
	if (batch.prefix !== null) {
		const listed = await env.BUCKET.list({
			prefix: batch.prefix,
			cursor: batch.list_cursor ?? undefined,
			limit,
			// Object metadata is only needed for the prompt an object's job would use.
			...(prompts && batch.prompt === null ? { include: ["customMetadata" as const] } : {}),
		});
		return {
			// Sidecars (`.txt`, `.json`: a write-back's, or anyone's) are not images: a prefix's batch leaves
			// them out, as a notification of one makes no job (echoes.ts).
			objects: listed.objects
				.filter((o) => !isSidecarLike(o.key))
				.map((o) => ({ key: o.key, etag: o.etag, size: o.size, ...promptOf(o.customMetadata) })),
			missing: [],
			nextCursor: listed.truncated ? listed.cursor : null,
		};
	}
	const afterSeq = batch.list_cursor === null ? -1 : Number(batch.list_cursor);
	const keys = await batchKeys(env.DB, batch.id, afterSeq, limit);
	const heads = await mapConcurrent(keys, HEAD_CONCURRENCY, (k) => env.BUCKET.head(k.key));
	const objects: ListedObject[] = [];
	const missing: string[] = [];
	keys.forEach((k, i) => {
		const head = heads[i];
		if (head) objects.push({ key: k.key, etag: head.etag, size: head.size, ...promptOf(head.customMetadata) });
		else missing.push(k.key);
	});
	const last = keys.at(-1);
	const more = last !== undefined && last.seq + 1 < (batch.key_count ?? 0);
	return { objects, missing, nextCursor: more && last ? String(last.seq) : null };
}

/**
 * The page's objects the batch leaves alone, each with the job that holds its caption (null: a
 * person's): a re-caption batch's rules, else `skip_captioned`.
 */
function skipsOf(db: D1Database, batch: BatchRow, objects: ListedObject[]): Promise<Map<string, string | null>> {
	const rules = recaptionOf(batch);
	if (rules !== null)
		return recaptionSkips(
			db,
			batch.bucket,
			rules,
			objects.map((o) => o.key),
		);
	return batch.skip_captioned === 1 ? alreadyCaptioned(db, batch.bucket, objects) : Promise.resolve(new Map());
}

/**
 * What page `batch.pages_listed` holds (at most `limit` objects or keys): objects to queue, keys
 * that are missing, objects to skip.
 */
export async function planPage(
	env: ConsumerEnv,
	batch: BatchRow,
	settings: ConsumerSettings,
	limit = settings.BATCH_PAGE_SIZE,
): Promise<PagePlan> {
	const { objects, missing, nextCursor } = await listPage(env, batch, settings, limit);
	const captioned = await skipsOf(env.DB, batch, objects);
	const skip: PagePlan["skip"] = [];
	const queue: ListedObject[] = [];
	for (const object of objects) {
		if (!captioned.has(object.key)) queue.push(object);
		else skip.push({ key: object.key, jobId: captioned.get(object.key) ?? null });
	}
	return { queue, missing, skip, nextCursor };
}

/** After a page committed: its caption messages, the next page's message, then the checkpoint forgets its ids. */
async function followUp(
	env: ConsumerEnv,
	batch: BatchRow,
	page: number,
	queued: string[],
	settled: SettledBatch | null,
) {
	// The batch lane's queue: interactive work never waits behind a batch's messages.
	const spillover = batch.spillover === 1 ? { spillover: true } : {};
	await sendAll(
		env.CAPTION_BATCH_JOBS,
		queued.map((job_id): CaptionRequest => ({ kind: "caption-job", job_id, ...spillover })),
	);
	if (batch.status === "listing") await env.BATCH_LISTING.send(batchPage(batch.id, page + 1), { contentType: "json" });
	// The events are in the outbox: if this send fails the webhooks Worker's cron sends them.
	if (settled) {
		await notifyEventHub(env.EVENT_HUB, [settled.eventId]);
		await sendAll(env.WEBHOOK_DELIVERIES, [batchEventMessage(settled)]).catch((err) =>
			log("warn", "queue_send_failed", { queue: "webhook-deliveries", batch_id: batch.id, error: errorMessage(err) }),
		);
	}
	await clearUnsent(env.DB, batch.id, page);
}

export async function handleBatchPage(
	message: Message<unknown>,
	env: ConsumerEnv,
	settings: ConsumerSettings,
): Promise<Outcome> {
	const parsed = BatchPageMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_batch_page", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		return ACK;
	}
	const { batch_id: batchId, page } = parsed.data;
	const batch = await getBatchRow(env.DB, batchId);
	if (!batch) {
		log("warn", "batch_page_without_batch", { batch_id: batchId, page });
		return ACK;
	}
	if (page === batch.pages_listed - 1 && batch.unsent_page === page && batch.unsent !== null) {
		// Committed before, follow-up unfinished: send again (duplicates of caption messages are harmless).
		const ids = await stillQueued(env.DB, JSON.parse(batch.unsent) as string[]);
		log("warn", "batch_page_resumed", { batch_id: batchId, page, resent: ids.length });
		await followUp(env, batch, page, ids, null);
		return ACK;
	}
	if (page !== batch.pages_listed || batch.status !== "listing") return ACK;
	if (batch.dry_run === 1) return planDryRunPage(env, batch, page, settings);

	// A key's batch lists no more objects than the key has places in flight (the admin's: a full page),
	// and keeps no more than BATCH_KEY_WINDOW of them in its lane's queue: keys' backfills then share
	// the queue in turn however large each is (docs/models.md, "Lanes").
	const keyId = batch.key_id;
	const cap = Math.min(settings.MAX_JOBS_IN_FLIGHT, settings.BATCH_KEY_WINDOW);
	const room = keyId === null ? Number.POSITIVE_INFINITY : cap - (await countJobsInFlight(env.DB, keyId, cap));
	if (room <= 0) return holdPage(env, batch, page, settings);
	// A key's page is at most a quarter of its window: pages of concurrent keys' batches then
	// alternate in the batch lane's queue in small chunks, so no key keeps a head start of a whole window.
	const chunk = keyId === null ? Number.POSITIVE_INFINITY : Math.ceil(settings.BATCH_KEY_WINDOW / 4);
	const plan = await planPage(env, batch, settings, Math.min(settings.BATCH_PAGE_SIZE, room, chunk));
	const committed = await commitPage(env.DB, batch, page, plan, Date.now(), keyId === null ? null : cap);
	if (committed.kind === "stale") return ACK;
	if (committed.kind === "held") return holdPage(env, batch, page, settings);
	log("info", "batch_page_listed", {
		batch_id: batchId,
		page,
		queued: committed.queued.length,
		skipped: plan.skip.length,
		missing: plan.missing.length,
		last: plan.nextCursor === null,
	});
	await followUp(env, committed.batch, page, committed.queued, committed.settled);
	return ACK;
}

/** A dry run's page: counted, no job made, no model called; the next page follows until the batch is planned. */
async function planDryRunPage(env: ConsumerEnv, batch: BatchRow, page: number, settings: ConsumerSettings) {
	const plan = await planPage(env, batch, settings);
	const planned = await commitPlannedPage(env.DB, batch, page, plan, Date.now());
	if (planned?.status === "listing") {
		await env.BATCH_LISTING.send(batchPage(batch.id, page + 1), { contentType: "json" });
	}
	log("info", "batch_page_planned", {
		batch_id: batch.id,
		page,
		would_queue: plan.queue.length,
		last: plan.nextCursor === null,
	});
	return ACK;
}

/**
 * The batch's key has no place in flight for the page: the page's message is sent again, delayed,
 * and this one acknowledged, so a batch waits at the cap as long as it takes (a retry would use up
 * the message's retries). The checkpoint is touched so that the stall sweeper leaves it alone.
 */
async function holdPage(env: ConsumerEnv, batch: BatchRow, page: number, settings: ConsumerSettings): Promise<Outcome> {
	const delaySeconds = settings.BATCH_HOLD_SECONDS;
	await touchListing(env.DB, batch.id, page, Date.now());
	await env.BATCH_LISTING.send(batchPage(batch.id, page), { contentType: "json", delaySeconds });
	log("info", "batch_page_held", { batch_id: batch.id, key_id: batch.key_id, page, retry_in_seconds: delaySeconds });
	return ACK;
}

/** A listing checkpoint that stopped moving this long ago has lost its page message. */
export const LISTING_STALL_MS = 10 * 60 * 1000;

/**
 * Cron (and `npm run dev`'s recovery sweeps, with their own cut-off): sends the page message of
 * every listing stalled since `before` again.
 */
export async function sweepStalledListings(
	env: ConsumerEnv,
	now = Date.now(),
	before = now - LISTING_STALL_MS,
): Promise<number> {
	const stalled = await takeStalledListings(env.DB, before, now);
	const messages = stalled.map((b) => ({
		body: batchPage(b.id, b.unsent_page ?? b.pages_listed),
		contentType: "json" as const,
	}));
	if (messages.length > 0) {
		await env.BATCH_LISTING.sendBatch(messages);
		log("warn", "stalled_listings_swept", { batches: messages.length });
	}
	return messages.length;
}
