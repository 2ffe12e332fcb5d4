/**
 * One message of the `caption-jobs` queue, from claim to caption: every message ends in an
 * explicit outcome (ack, or retry with a delay) and every job it claims in a terminal state or
 * back in the queue.
 */

import { randomToken } from "../../shared/ids";
import { prepareImage, type SourceImage } from "../../shared/image/prepare";
import { inspectImage, validateImage } from "../../shared/image/sniff";
import { JobFailure, TransientError } from "../../shared/jobs/errors";
import { resolveOptions } from "../../shared/jobs/options";
import type { JobRow } from "../../shared/jobs/schema";
import {
	type ClaimResult,
	claimJobById,
	claimNotificationJob,
	type FinishOutcome,
	finishStatement,
	type JobResultFields,
	releaseJob,
} from "../../shared/jobs/store";
import { errorMessage, log } from "../../shared/log";
import type { ModelChain } from "../../shared/models/chain";
import { backoffSeconds } from "../../shared/queue/backoff";
import { CaptionMessage, isCreateAction } from "../../shared/r2/notification";
import { emitJobFinished } from "../../shared/webhooks/emit";
import { finishWithEvent } from "../../shared/webhooks/outbox";
import type { ConsumerSettings } from "./config";

export type Outcome = { ack: true } | { retryAfterSeconds: number };

const ACK: Outcome = { ack: true };

/** Objects up to this size are read whole; larger ones are streamed into the Images binding. */
export const READ_WHOLE_LIMIT = 4 * 1024 * 1024;
/** Enough of a large file to find its dimensions (JPEG EXIF blocks can be long). */
const HEADER_BYTES = 256 * 1024;

export interface BatchContext {
	env: ConsumerEnv;
	settings: ConsumerSettings;
	chain: ModelChain;
	/** Counts of messages that made no job (reported in one D1 write per batch). */
	counters: Record<string, number>;
}

function count(ctx: BatchContext, name: string): void {
	ctx.counters[name] = (ctx.counters[name] ?? 0) + 1;
}

async function claim(message: Message<unknown>, ctx: BatchContext): Promise<ClaimResult | Outcome> {
	const parsed = CaptionMessage.safeParse(message.body);
	if (!parsed.success) {
		log("warn", "invalid_message", { message_id: message.id, reason: parsed.error.issues[0]?.message });
		count(ctx, "invalid_messages");
		return ACK;
	}
	const now = Date.now();
	const lease = { token: randomToken(), now, expiresAt: now + ctx.settings.LEASE_SECONDS * 1000 };
	const body = parsed.data;
	if ("kind" in body) return claimJobById(ctx.env.DB, body.job_id, lease);
	if (!isCreateAction(body)) {
		count(ctx, "ignored_events");
		return ACK;
	}
	if (!body.object.eTag) {
		log("warn", "invalid_message", { message_id: message.id, reason: `${body.action} without object.eTag` });
		count(ctx, "invalid_messages");
		return ACK;
	}
	return claimNotificationJob(
		ctx.env.DB,
		{
			bucket: body.bucket,
			key: body.object.key,
			etag: body.object.eTag,
			size: body.object.size ?? null,
			eventTime: Date.parse(body.eventTime),
		},
		lease,
	);
}

/** Reads the object version of a job and checks that it is an image worth sending to a model. */
async function loadSource(job: JobRow, ctx: BatchContext, fields: JobResultFields): Promise<SourceImage> {
	const bucket = ctx.env.BUCKET;
	const onlyIf = { etagMatches: job.etag };
	const object = await bucket.get(job.key, { onlyIf });
	if (!object) throw new JobFailure("object_not_found", `The object ${job.key} no longer exists.`);
	if (!("body" in object)) {
		throw new JobFailure("object_not_found", `The object ${job.key} was replaced by a newer version.`);
	}
	const body = object.body;
	try {
		const options = resolveOptions(job, object.customMetadata ?? {}, {
			prompt: ctx.settings.DEFAULT_PROMPT,
			maxTokens: ctx.settings.DEFAULT_MAX_TOKENS,
		});
		fields.prompt = options.prompt;
		fields.maxTokens = options.maxTokens;
		fields.callbackUrl = options.callbackUrl;
		if (object.size === 0) throw new JobFailure("empty_object", "The object is empty.");
		if (object.size > ctx.settings.MAX_OBJECT_BYTES) {
			throw new JobFailure(
				"image_too_large",
				`The object is ${object.size} bytes; the limit is ${ctx.settings.MAX_OBJECT_BYTES}.`,
			);
		}
		const open = async () => {
			const again = await bucket.get(job.key, { onlyIf });
			if (!again || !("body" in again)) throw new JobFailure("object_not_found", `The object ${job.key} is gone.`);
			return again.body;
		};
		if (object.size <= READ_WHOLE_LIMIT) {
			const bytes = new Uint8Array(await new Response(body).arrayBuffer());
			const info = validateImage(bytes);
			fields.contentType = info.mime;
			return { info, bytes, open };
		}
		const info = inspectImage(await readPrefix(body, HEADER_BYTES));
		fields.contentType = info.mime;
		return { info, bytes: null, open };
	} finally {
		if (!body.locked) await body.cancel().catch(() => {});
	}
}

/** The first `limit` bytes of a stream (fewer if it is shorter); the rest is not read. */
async function readPrefix(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
	const reader = stream.getReader();
	const out = new Uint8Array(limit);
	let filled = 0;
	try {
		while (filled < limit) {
			const { done, value } = await reader.read();
			if (done) break;
			const take = Math.min(value.length, limit - filled);
			out.set(value.subarray(0, take), filled);
			filled += take;
		}
	} finally {
		await reader.cancel().catch(() => {});
	}
	return out.subarray(0, filled);
}

async function settle(
	ctx: BatchContext,
	job: JobRow,
	outcome: FinishOutcome,
	fields: JobResultFields,
): Promise<Outcome> {
	// The finish and its webhook event commit together: a finished job never lacks its event.
	const now = Date.now();
	const settled = await finishWithEvent(
		ctx.env.DB,
		finishStatement(ctx.env.DB, job, now, outcome, fields),
		job.id,
		now,
	);
	if (settled) {
		const finished = settled.job;
		log("info", "job_finished", {
			job_id: job.id,
			status: finished.status,
			error_code: finished.error_code,
			model: finished.model,
			total_ms: finished.total_ms,
		});
		await emitJobFinished(ctx.env, settled);
	} else {
		log("warn", "lease_lost", { job_id: job.id });
	}
	return ACK;
}

export async function handleCaptionMessage(message: Message<unknown>, ctx: BatchContext): Promise<Outcome> {
	const claimed = await claim(message, ctx);
	if ("ack" in claimed || "retryAfterSeconds" in claimed) return claimed;
	if ("missing" in claimed) {
		log("warn", "invalid_message", { message_id: message.id, reason: "no such job" });
		count(ctx, "invalid_messages");
		return ACK;
	}
	if ("existing" in claimed) {
		const job = claimed.existing;
		// A duplicate: finished, or running elsewhere under a lease. Look again once the lease ends.
		if (job.status === "processing" && job.lease_expires_at !== null) {
			return { retryAfterSeconds: Math.max(1, Math.ceil((job.lease_expires_at - Date.now()) / 1000) + 1) };
		}
		count(ctx, "duplicate_messages");
		return ACK;
	}

	const job = claimed.claimed;
	const fields: JobResultFields = {};
	try {
		const source = await loadSource(job, ctx, fields);
		const images = ctx.env.IMAGES;
		const prompt = fields.prompt ?? ctx.settings.DEFAULT_PROMPT;
		const result = await ctx.chain.caption((limits) => prepareImage(images, source, limits), {
			prompt,
			maxTokens: fields.maxTokens ?? ctx.settings.DEFAULT_MAX_TOKENS,
			question: prompt !== ctx.settings.DEFAULT_PROMPT,
		});
		return settle(
			ctx,
			job,
			{ status: "succeeded", caption: result.caption },
			{ ...fields, model: result.model, inferenceMs: result.inferenceMs },
		);
	} catch (err) {
		if (err instanceof JobFailure) {
			return settle(ctx, job, { status: "failed", code: err.code, message: err.message }, fields);
		}
		const reason = errorMessage(err);
		if (message.attempts > ctx.settings.CAPTION_MAX_RETRIES) {
			return settle(
				ctx,
				job,
				{
					status: "failed",
					code: "retries_exhausted",
					message: `Gave up after ${message.attempts} attempts: ${reason}`,
				},
				fields,
			);
		}
		await releaseJob(ctx.env.DB, job, Date.now());
		const delay = backoffSeconds(
			message.attempts,
			{ baseSeconds: ctx.settings.RETRY_BASE_SECONDS, maxSeconds: ctx.settings.RETRY_MAX_SECONDS },
			Math.random,
			err instanceof TransientError ? err.minDelaySeconds : 0,
		);
		log("warn", "job_retry", { job_id: job.id, attempts: message.attempts, delay_seconds: delay, reason });
		return { retryAfterSeconds: delay };
	}
}
