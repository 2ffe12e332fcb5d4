/**
 * Queue message bodies of the `caption-jobs` queue: R2 event notifications (as R2 sends them) and
 * caption requests made through the API for a job row that already exists.
 */
import { z } from "zod";

/** Actions that make a job; deletes are recorded for retention (docs/data.md#retention), never a job. */
export const CREATE_ACTIONS = ["PutObject", "CopyObject", "CompleteMultipartUpload"] as const;
export const DELETE_ACTIONS = ["DeleteObject", "LifecycleDeletion"] as const;

export const R2Notification = z.object({
	account: z.string(),
	action: z.enum([...CREATE_ACTIONS, ...DELETE_ACTIONS]),
	bucket: z.string().min(1),
	object: z.object({
		key: z.string().min(1),
		size: z.number().int().nonnegative().optional(),
		eTag: z.string().min(1).optional(),
	}),
	eventTime: z.iso.datetime(),
	copySource: z.object({ bucket: z.string(), object: z.string() }).optional(),
});
export type R2Notification = z.infer<typeof R2Notification>;

/** A caption request for a job created through `POST /v1/jobs` (or re-queued by the sweeper). */
export const CaptionRequest = z.object({
	kind: z.literal("caption-job"),
	job_id: z.string().startsWith("job_"),
	/** The job's batch asked for spillover (its captions may use another task type's budget). */
	spillover: z.boolean().optional(),
});
export type CaptionRequest = z.infer<typeof CaptionRequest>;

export const CaptionMessage = z.union([R2Notification, CaptionRequest]);
export type CaptionMessage = z.infer<typeof CaptionMessage>;

/** An object version: what a notification job is unique on. */
export interface ObjectVersion {
	bucket: string;
	key: string;
	etag: string;
	size: number | null;
}

/** What a `caption-jobs` message asks for, whichever form it came in. */
export type CaptionTarget =
	/** A job row that exists already (API-made, or re-queued by the sweeper). */
	| { kind: "job"; jobId: string; spillover: boolean }
	/** The job of an object version that was created, copied or uploaded. */
	| { kind: "object-version"; version: ObjectVersion; eventTime: number }
	/** An object deleted from the bucket: no job, but retention lets its jobs go after a while. */
	| { kind: "deleted"; bucket: string; key: string; deletedAt: number }
	/** A notification about another bucket than the service's (a misrouted notification rule). */
	| { kind: "foreign"; bucket: string }
	| { kind: "invalid"; reason: string };

const isCreateAction = (action: R2Notification["action"]) => (CREATE_ACTIONS as readonly string[]).includes(action);

function notificationTarget(n: R2Notification): CaptionTarget {
	if (!isCreateAction(n.action)) {
		return { kind: "deleted", bucket: n.bucket, key: n.object.key, deletedAt: Date.parse(n.eventTime) };
	}
	if (!n.object.eTag) return { kind: "invalid", reason: `${n.action} without object.eTag` };
	const version = { bucket: n.bucket, key: n.object.key, etag: n.object.eTag, size: n.object.size ?? null };
	return { kind: "object-version", version, eventTime: Date.parse(n.eventTime) };
}

const targetIn = (bucket: string) =>
	z.union([
		CaptionRequest.transform(
			(request): CaptionTarget => ({ kind: "job", jobId: request.job_id, spillover: request.spillover === true }),
		),
		R2Notification.transform(
			(n): CaptionTarget => (n.bucket === bucket ? notificationTarget(n) : { kind: "foreign", bucket: n.bucket }),
		),
	]);

/**
 * Reads a message body of `caption-jobs` (or of its dead-letter queue) for the service's bucket
 * `bucket`: a notification about any other bucket is `foreign`, never a job.
 */
export function readCaptionMessage(body: unknown, bucket: string): CaptionTarget {
	const parsed = targetIn(bucket).safeParse(body);
	return parsed.success ? parsed.data : { kind: "invalid", reason: parsed.error.issues[0]?.message ?? "invalid" };
}

/** The exact message R2 sends for a PutObject (local mode enqueues it itself). */
export function putObjectNotification(args: {
	account?: string;
	bucket: string;
	key: string;
	size: number;
	etag: string;
	eventTime?: Date;
}): R2Notification {
	return {
		account: args.account ?? "local",
		action: "PutObject",
		bucket: args.bucket,
		object: { key: args.key, size: args.size, eTag: args.etag },
		eventTime: (args.eventTime ?? new Date()).toISOString(),
	};
}
