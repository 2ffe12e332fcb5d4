/**
 * Queue message bodies of the `caption-jobs` queue: R2 event notifications (as R2 sends them) and
 * caption requests made through the API for a job row that already exists.
 */
import { z } from "zod";

/** Actions that make a job; the others (deletes) are acknowledged and ignored. */
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
});
export type CaptionRequest = z.infer<typeof CaptionRequest>;

export const CaptionMessage = z.union([R2Notification, CaptionRequest]);
export type CaptionMessage = z.infer<typeof CaptionMessage>;

export function isCreateAction(n: R2Notification): boolean {
	return (CREATE_ACTIONS as readonly string[]).includes(n.action);
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
