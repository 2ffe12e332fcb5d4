/**
 * One message of the `caption-jobs` queue, from claim to caption, as a pipeline of named steps:
 * claim the job, caption it (open its object version, resolve its options, read the image, run
 * the model chain), settle it. Each step returns a tagged union; the message ends in an explicit
 * outcome and the job it claimed in a terminal state or back in the queue.
 */

import { newJobId, randomToken } from "../../shared/ids";
import { JobFailure, TransientError } from "../../shared/jobs/errors";
import type { CaptionOptions } from "../../shared/jobs/options";
import type { JobRow } from "../../shared/jobs/schema";
import {
	type ClaimResult,
	type FinishOutcome,
	type JobResultFields,
	type Lease,
	releaseJob,
	waitingOptionsJob,
} from "../../shared/jobs/store";
import { shareJobTexts } from "../../shared/jobs/texts";
import { reopenWrittenVersion } from "../../shared/jobs/written-again";
import { errorMessage, log } from "../../shared/log";
import type { ModelChain } from "../../shared/models/chain";
import { addUsage, thrownUsage } from "../../shared/models/usage";
import { isSidecarLike, SIDECAR_NAME } from "../../shared/outputs/sidecar";
import { TEXT_OUTPUT_KINDS } from "../../shared/outputs/spec";
import { backoffSeconds } from "../../shared/queue/backoff";
import { type CaptionRequest, type ObjectVersion, readCaptionMessage } from "../../shared/queue/caption-jobs";
import type { GatherTicket } from "../../shared/queue/gather";
import { ACK, type BatchCounters, type Outcome, retryAfter } from "../../shared/queue/runner";
import { sendOrLeaveToSweeper } from "../../shared/queue/send";
import type { Lane, SlotRequest } from "../../shared/scheduling/lanes";
import type { SlotAnswer } from "./batch-slots";
import type { ClaimAnswer, ClaimAsk } from "./claims";
import type { ConsumerSettings } from "./config";
import { recordObjectDeletion } from "./deleted-objects";
import { type Echo, echoOf, isEchoOfGoneVersion } from "./echoes";
import type { FinishAnswer, FinishAsk } from "./finish";
import { captionRoute } from "./lane-route";
import { keepingLease } from "./lease";
import { prepareImage, type SourceImage } from "./prepare-image";
import { batchPresets } from "./presets";
import { outputFields, type Produced, produceOutput } from "./produce-output";
import {
	discardBody,
	notifiedOptionsKey,
	type OpenedObject,
	objectOptions,
	openNotifiedVersion,
	openObject,
	readAhead,
	readSource,
} from "./read-source";
import { writeBackJob } from "./write-back";

export interface BatchContext {
	env: ConsumerEnv;
	settings: ConsumerSettings;
	chain: ModelChain;
	/** The lane of the queue the batch came from: how its model calls are scheduled. */
	lane: Lane;
	/** Counts of messages that made no job (written once per batch). */
	counters: BatchCounters;
	/** This message's place among the batch's claims, made together (claims.ts). */
	claims: GatherTicket<ClaimAsk, ClaimAnswer>;
	/** This message's place among the batch's finishes, written together (finish.ts, `finishJobs`). */
	finishes: GatherTicket<FinishAsk, FinishAnswer>;
	/** This message's place among the batch's first rate-limit slots, asked for together (batch-slots.ts). */
	slots?: GatherTicket<SlotRequest, SlotAnswer>;
}

export async function handleCaptionMessage(message: Message<unknown>, ctx: BatchContext): Promise<Outcome> {
	const claim = await claimJob(message, ctx);
	// Past its model calls (or without any), the message no longer holds up the batch's slot requests.
	if (claim.kind !== "claimed") ctx.slots?.leave();
	switch (claim.kind) {
		case "skipped":
			ctx.counters.add(claim.counter);
			return ACK;
		case "busy":
			return retryAfter(claim.retryAfterSeconds);
		case "reopened":
			return ACK;
		case "claimed": {
			const attempt = await captionJob(claim.job, claim.spillover, claim.object, ctx);
			ctx.slots?.leave();
			return settle(claim.job, attempt, message.attempts, ctx);
		}
		case "write-back":
			return writeBackJob(ctx.env, ctx.settings, claim.job, message.attempts);
	}
}

type Claim =
	/** `object`: the job's object version, opened before the claim (null: open it now). */
	| { kind: "claimed"; job: JobRow; spillover: boolean; object: OpenedObject | null }
	/** Finished, with its write-back still to do (an earlier delivery ended before it). */
	| { kind: "write-back"; job: JobRow }
	/** The version is there again and its job no longer stands for it (shared/jobs/written-again.ts): a new job was made. */
	| { kind: "reopened" }
	/** Running under another message's lease: look again once it ends. */
	| { kind: "busy"; retryAfterSeconds: number }
	/** Nothing to do, only to count. */
	| {
			kind: "skipped";
			counter: "invalid_messages" | "ignored_events" | "duplicate_messages" | "foreign_bucket_notifications" | Echo;
	  };

async function claimJob(message: Message<unknown>, ctx: BatchContext): Promise<Claim> {
	const target = readCaptionMessage(message.body, ctx.settings.BUCKET_NAME);
	const lease = newLease(ctx.settings);
	switch (target.kind) {
		case "invalid":
			log("warn", "invalid_message", { message_id: message.id, reason: target.reason });
			return { kind: "skipped", counter: "invalid_messages" };
		case "deleted":
			await recordObjectDeletion(ctx.env.DB, target);
			return { kind: "skipped", counter: "ignored_events" };
		case "foreign":
			log("warn", "foreign_bucket_notification", { message_id: message.id, bucket: target.bucket });
			return { kind: "skipped", counter: "foreign_bucket_notifications" };
		case "job":
			return claimed(message, await claim(ctx, { kind: "id", id: target.jobId, lease }), target.spillover);
		case "object-version": {
			// One R2 read for the claim and the caption: the notified version's metadata (its echo mark,
			// its options key) and, if the claim is made, its body. The current version's metadata
			// only, or null, when it was replaced or deleted since.
			const opened = await openNotifiedVersion(ctx.env.BUCKET, target.version);
			const body = opened !== null && "body" in opened ? opened : null;
			const echo = echoOf(target.version, opened);
			let result: ClaimResult | null = null;
			try {
				if (echo !== null) return { kind: "skipped", counter: echo };
				// A small image is read while the batch's claims are gathered and written.
				const ahead = body && readAhead(body, ctx.settings.MAX_OBJECT_BYTES);
				const optionsKey = await notifiedOptionsKey(target.version, opened);
				// The version is gone (replaced or deleted since): a job an upload made for it with caption
				// options waits for this notification, which can no longer read them. That job is the one
				// to fail (object_not_found), not a new one of no options.
				const waiting = body === null ? await waitingOptionsJob(ctx.env.DB, target.version, lease.now) : null;
				if (body === null && waiting === null && (await isEchoOfGoneVersion(ctx.env.DB, target.version))) {
					return { kind: "skipped", counter: "write_back_echoes" };
				}
				const ask: ClaimAsk =
					waiting !== null
						? { kind: "id", id: waiting, lease }
						: { kind: "version", version: target.version, eventTime: target.eventTime, lease, optionsKey };
				result = await claim(ctx, ask);
				if (
					body !== null &&
					result.kind === "existing" &&
					(await reopened(ctx, target.version, optionsKey, result.job))
				) {
					return { kind: "reopened" };
				}
				return claimed(message, result, false, body && { body, ahead });
			} finally {
				if (body !== null && result?.kind !== "claimed") await discardBody(body);
			}
		}
	}
}

/**
 * The notified version is in the bucket and its job finished: the version may have been written
 * again (A, B over it, A again) after that job failed object_not_found, or after a caption of other
 * bytes was made current. Then a new job captions it (shared/jobs/written-again.ts), sent by id; a
 * duplicate of this notification finds that job made and makes none. True when a job was made.
 */
async function reopened(ctx: BatchContext, version: ObjectVersion, optionsKey: string, job: JobRow): Promise<boolean> {
	if (job.source !== "notification" || (job.status !== "failed" && job.status !== "succeeded")) return false;
	const now = Date.now();
	const id = await reopenWrittenVersion(ctx.env.DB, version, optionsKey, newJobId(now), now);
	if (id === null) return false;
	const request: CaptionRequest = { kind: "caption-job", job_id: id };
	await sendOrLeaveToSweeper(ctx.env.CAPTION_JOBS, { body: request }, { queue: "caption-jobs", job_id: id });
	return true;
}

/** The claim, made in one write with the batch's other claims ready by then. */
async function claim(ctx: BatchContext, ask: ClaimAsk): Promise<ClaimResult> {
	const answer = await ctx.claims.ask(ask);
	if (answer.kind === "error") throw answer.error;
	return answer.result;
}

function newLease(settings: ConsumerSettings): Lease {
	const now = Date.now();
	return { token: randomToken(), now, expiresAt: now + settings.LEASE_SECONDS * 1000 };
}

function claimed(
	message: Message<unknown>,
	result: ClaimResult,
	spillover = false,
	object: OpenedObject | null = null,
): Claim {
	switch (result.kind) {
		case "claimed":
			return { kind: "claimed", job: result.job, spillover, object };
		case "missing":
			log("warn", "invalid_message", { message_id: message.id, reason: "no such job" });
			return { kind: "skipped", counter: "invalid_messages" };
		case "existing": {
			// A duplicate: finished, or running elsewhere under a lease.
			const { status, lease_expires_at: leaseEnd } = result.job;
			if (status === "succeeded" && result.job.write_back_status === "pending") {
				return { kind: "write-back", job: result.job };
			}
			if (status === "processing" && leaseEnd !== null) {
				return { kind: "busy", retryAfterSeconds: Math.max(1, Math.ceil((leaseEnd - Date.now()) / 1000) + 1) };
			}
			return { kind: "skipped", counter: "duplicate_messages" };
		}
	}
}

/** How the attempt at a claimed job ended, with what it learned about the job (`fields`) by then. */
type Attempt =
	| { kind: "captioned"; caption: string; result: string; fields: JobResultFields }
	| { kind: "failed"; failure: JobFailure; fields: JobResultFields }
	| { kind: "transient"; error: unknown; fields: JobResultFields };

/** A step's value, or the end of the attempt. */
type Step<T> = { kind: "next"; value: T } | { kind: "end"; attempt: Attempt };

/**
 * Runs one step of an attempt. A JobFailure it throws fails the job; anything else is transient.
 * Either way the attempt ends with the fields learned before this step, and the tokens of the
 * model calls that answered before it threw (docs/jobs.md#usage).
 */
async function step<T>(known: JobResultFields, run: () => T | Promise<T>): Promise<Step<T>> {
	try {
		return { kind: "next", value: await run() };
	} catch (thrown) {
		const { error, usage } = thrownUsage(thrown);
		const fields = usage === null ? known : { ...known, usage: addUsage(known.usage ?? null, usage) };
		const attempt: Attempt =
			error instanceof JobFailure ? { kind: "failed", failure: error, fields } : { kind: "transient", error, fields };
		return { kind: "end", attempt };
	}
}

async function captionJob(
	job: JobRow,
	spillover: boolean,
	object: OpenedObject | null,
	ctx: BatchContext,
): Promise<Attempt> {
	// A sidecar's name is never captioned, whatever its bytes (a job by id, a keys batch): its own
	// sidecar would be itself, the image overwritten by its caption (docs/outputs.md).
	if (isSidecarLike(job.key)) {
		if (object) await discardBody(object.body);
		return { kind: "failed", failure: new JobFailure("unsupported_media_type", SIDECAR_NAME), fields: {} };
	}
	const opened = await step({}, async () => object ?? { body: await openObject(ctx.env.BUCKET, job), ahead: null });
	if (opened.kind === "end") return opened.attempt;
	const loaded = await loadSource(job, opened.value, ctx);
	if (loaded.kind === "end") return loaded.attempt;
	const { options, source, fields } = loaded.value;
	const images = ctx.env.IMAGES;
	const turn = {
		lane: ctx.lane,
		keyId: job.key_id,
		language: options.language,
		spillover,
		createdAt: job.created_at,
		slots: ctx.slots,
	};
	const captioned = await step(fields, async () =>
		produceOutput(
			ctx.chain,
			(limits) => prepareImage(images, source, limits),
			options,
			job.key_id,
			keepingLease(await captionRoute(ctx.env, ctx.settings, turn), ctx.env.DB, job, ctx.settings.LEASE_SECONDS * 1000),
		),
	);
	if (captioned.kind === "end") return captioned.attempt;
	return attemptOf(captioned.value, fields);
}

/** The job's side of the chain's answer; the tokens its calls reported count whatever the outcome. */
function attemptOf(captioning: Produced, known: JobResultFields): Attempt {
	const fields: JobResultFields = { ...known, usage: captioning.usage };
	const { inferenceMs } = captioning;
	switch (captioning.kind) {
		case "produced":
			return {
				kind: "captioned",
				caption: captioning.text,
				result: JSON.stringify(captioning.result),
				fields: { ...fields, model: captioning.model, inferenceMs },
			};
		case "invalid":
			return {
				kind: "failed",
				failure: new JobFailure("invalid_output", captioning.message),
				fields: { ...fields, model: captioning.model, inferenceMs },
			};
		case "unusable":
			return {
				kind: "failed",
				failure: new JobFailure("invalid_options", captioning.message),
				fields: { ...fields, model: captioning.model, inferenceMs },
			};
		case "refused":
			return { kind: "failed", failure: new JobFailure("model_error", captioning.message), fields };
		case "too_large":
			return { kind: "failed", failure: new JobFailure("image_too_large", captioning.message), fields };
		case "unavailable":
			return { kind: "failed", failure: new JobFailure("model_unavailable", captioning.message), fields };
		case "retry":
			return { kind: "transient", error: new TransientError(captioning.message, captioning.minDelaySeconds), fields };
	}
}

interface Loaded {
	options: CaptionOptions;
	source: SourceImage;
	fields: JobResultFields;
}

/** The job's options (explicit, then custom metadata, then the defaults) and its image. */
async function loadSource(job: JobRow, opened: OpenedObject, ctx: BatchContext): Promise<Step<Loaded>> {
	const object = opened.body;
	try {
		const defaults = { prompt: ctx.settings.DEFAULT_PROMPT, maxTokens: ctx.settings.DEFAULT_MAX_TOKENS };
		const preset = await batchPresets(ctx.chain, ctx.env.DB).forKey(job.key);
		const resolved = await step({}, () => objectOptions(job, object, defaults, ctx.settings.DEPLOY_MODE, preset));
		if (resolved.kind === "end") return resolved;
		const options = resolved.value;
		const known: JobResultFields = {
			prompt: options.prompt,
			maxTokens: options.maxTokens,
			callbackUrl: options.callbackUrl,
			...outputFields(options),
		};
		const read = await step(known, () =>
			readSource(ctx.env.BUCKET, job, object, ctx.settings.MAX_OBJECT_BYTES, opened.ahead),
		);
		if (read.kind === "end") return read;
		const source = read.value;
		return { kind: "next", value: { options, source, fields: { ...known, contentType: source.info.mime } } };
	} finally {
		await discardBody(object);
	}
}

async function settle(job: JobRow, attempt: Attempt, attempts: number, ctx: BatchContext): Promise<Outcome> {
	switch (attempt.kind) {
		case "captioned":
			return finish(
				job,
				{ status: "succeeded", caption: attempt.caption, result: attempt.result },
				attempt.fields,
				ctx,
				attempts,
			);
		case "failed": {
			const { code, message } = attempt.failure;
			return finish(job, { status: "failed", code, message }, attempt.fields, ctx, attempts);
		}
		case "transient": {
			const next = afterTransientError(attempt.error, attempts, ctx.settings);
			switch (next.kind) {
				case "give-up":
					return finish(
						job,
						{ status: "failed", code: "retries_exhausted", message: next.message },
						attempt.fields,
						ctx,
						attempts,
					);
				case "retry": {
					const now = Date.now();
					const delay = retryAfter(next.delaySeconds);
					await releaseJob(ctx.env.DB, job, now, attempt.fields.usage ?? null, now + delay.delaySeconds * 1000);
					log("warn", "job_retry", {
						job_id: job.id,
						attempts,
						delay_seconds: next.delaySeconds,
						reason: errorMessage(attempt.error),
					});
					return delay;
				}
			}
		}
	}
}

type AfterTransientError = { kind: "retry"; delaySeconds: number } | { kind: "give-up"; message: string };

/** The message's last delivery gives up; earlier ones retry with backoff (at least what the error asks). */
function afterTransientError(error: unknown, attempts: number, settings: ConsumerSettings): AfterTransientError {
	if (attempts > settings.CAPTION_MAX_RETRIES) {
		return { kind: "give-up", message: `Gave up after ${attempts} attempts: ${errorMessage(error)}` };
	}
	const policy = { baseSeconds: settings.RETRY_BASE_SECONDS, maxSeconds: settings.RETRY_MAX_SECONDS };
	const atLeast = error instanceof TransientError ? error.minDelaySeconds : 0;
	return { kind: "retry", delaySeconds: backoffSeconds(attempts, policy, Math.random, atLeast) };
}

/**
 * Makes the job terminal with its event, in one write with the batch's other finishes ready by
 * then; a finish after the lease was lost writes nothing.
 */
async function finish(
	job: JobRow,
	outcome: FinishOutcome,
	fields: JobResultFields,
	ctx: BatchContext,
	attempts: number,
): Promise<Outcome> {
	// Its model's name, the default prompt, its content type and a plain output kind are texts jobs
	// share: the job refers to them (a custom prompt or a JSON schema stays in its row).
	await shareJobTexts(ctx.env.DB, [
		fields.model,
		fields.prompt === ctx.settings.DEFAULT_PROMPT ? fields.prompt : null,
		fields.contentType,
		fields.output && (TEXT_OUTPUT_KINDS as readonly string[]).includes(fields.output) ? fields.output : null,
	]);
	const answer = await ctx.finishes.ask({ job, outcome, fields });
	if (answer.kind === "error") throw answer.error;
	const finished = answer.job;
	if (finished) {
		log("info", "job_finished", {
			job_id: job.id,
			status: finished.status,
			error_code: finished.error_code,
			model: finished.model,
			total_ms: finished.total_ms,
		});
		// Pending only when the job succeeded with a write-back asked for.
		if (finished.write_back_status === "pending") return writeBackJob(ctx.env, ctx.settings, finished, attempts);
	} else {
		log("warn", "lease_lost", { job_id: job.id });
	}
	return ACK;
}
