/**
 * Webhook shapes that cross a boundary (docs/data.md): the event payload receivers get, the public JSON
 * of subscriptions and deliveries, and the rows of the webhook tables as D1 returns them. (The
 * messages of the `webhook-deliveries` queue are in shared/queue/webhook-deliveries.ts.)
 */
import { z } from "zod";
import { Batch } from "../batches/schema";
import { Caption } from "../captions/schema";
import { Job } from "../jobs/schema";

export const JOB_EVENT_TYPES = ["job.succeeded", "job.failed"] as const;
export const BATCH_EVENT_TYPES = ["batch.completed", "batch.cancelled"] as const;
/** Opt-in: a running batch's Batch JSON, at most once a minute per batch and subscription. */
export const BATCH_PROGRESS_EVENT = "batch.progress";
/** Sent only to subscriptions that list it: a person wrote a caption (`PUT /v1/captions/{key}`). */
export const CAPTION_EVENT_TYPES = ["caption.updated"] as const;
export const WEBHOOK_EVENT_TYPES = [
	...JOB_EVENT_TYPES,
	...BATCH_EVENT_TYPES,
	BATCH_PROGRESS_EVENT,
	...CAPTION_EVENT_TYPES,
] as const;
export const WebhookEventType = z.enum(WEBHOOK_EVENT_TYPES).meta({ id: "WebhookEventType" });
export type WebhookEventType = z.infer<typeof WebhookEventType>;

export const DELIVERY_STATUSES = ["pending", "succeeded", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * The body of every delivery: a job's event with the Job JSON, a batch's final event (or
 * progress) with the Batch JSON, or a caption's with the Caption JSON. `timestamp` is when the job
 * finished, the batch settled, the progress was taken or the caption was written, the same on
 * every attempt.
 */
export const JobWebhookPayload = z.object({ type: z.enum(JOB_EVENT_TYPES), timestamp: z.iso.datetime(), data: Job });
export const BatchWebhookPayload = z.object({
	type: z.enum(BATCH_EVENT_TYPES),
	timestamp: z.iso.datetime(),
	data: Batch,
});
/** A running batch's progress: the Batch JSON with its rate and ETA at `timestamp`. */
export const BatchProgressWebhookPayload = z.object({
	type: z.literal(BATCH_PROGRESS_EVENT),
	timestamp: z.iso.datetime(),
	data: Batch,
});
/** `data` is the object's caption as it was when the event was made (stored with the event). */
export const CaptionWebhookPayload = z.object({
	type: z.enum(CAPTION_EVENT_TYPES),
	timestamp: z.iso.datetime(),
	data: Caption,
});
export const WebhookPayload = z
	.discriminatedUnion("type", [
		JobWebhookPayload,
		BatchWebhookPayload,
		BatchProgressWebhookPayload,
		CaptionWebhookPayload,
	])
	.meta({ id: "WebhookPayload" });
export type WebhookPayload = z.infer<typeof WebhookPayload>;

const isoTime = z.iso.datetime();

export const WebhookSubscription = z
	.object({
		id: z.string().meta({ example: "wh_01JD2X6B8J3W4Q5R6S7T8V9W0X" }),
		url: z.string().meta({ example: "https://example.com/hooks/captions" }),
		events: z.array(WebhookEventType),
		prefix: z.string().nullable().meta({
			description:
				"Only jobs whose object key starts with this, and batches whose objects all do (a prefix batch's prefix starts with it); null: all.",
		}),
		status: z.enum(["active", "disabled"]),
		disabled_reason: z.string().nullable().meta({
			description:
				"Why it is disabled: `key_revoked` (the key that created it was revoked), `endpoint_failing` (every attempt failed for 24 h), or the endpoint's `410 Gone` answer; null while active.",
		}),
		key_id: z.string().nullable().meta({
			description:
				"The API key that created it, which (with the admin) alone may delete, rotate or redeliver it; null: created with the admin token.",
		}),
		failing_since: isoTime.nullable().meta({
			description: "Since when every attempt to the endpoint has failed; null after a success.",
		}),
		previous_secret_expires_at: isoTime.nullable().meta({
			description: "After a secret rotation: until when deliveries are signed with the previous secret too.",
		}),
		created_at: isoTime,
	})
	.meta({ id: "WebhookSubscription" });
export type WebhookSubscription = z.infer<typeof WebhookSubscription>;

export const CreatedWebhookSubscription = WebhookSubscription.extend({
	secret: z.string().meta({
		description: "The `whsec_` signing secret. Shown once; verify deliveries with it.",
		example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}),
}).meta({ id: "CreatedWebhookSubscription" });
export type CreatedWebhookSubscription = z.infer<typeof CreatedWebhookSubscription>;

/** The rotation response: the subscription with its new secret, shown this once. */
export const RotatedWebhookSecret = WebhookSubscription.extend({
	secret: z.string().meta({
		description:
			"The new `whsec_` secret. Shown once. Until `previous_secret_expires_at` every delivery carries a signature with each secret.",
		example: "whsec_4Q1d3Jv9Ytq3dYc2m6a3o0yVbNw4PuXk",
	}),
}).meta({ id: "RotatedWebhookSecret" });
export type RotatedWebhookSecret = z.infer<typeof RotatedWebhookSecret>;

export const WebhookAttempt = z
	.object({
		attempt: z.number().int(),
		started_at: isoTime,
		status_code: z.number().int().nullable(),
		duration_ms: z.number().int(),
		error: z.string().nullable(),
	})
	.meta({ id: "WebhookAttempt" });
export type WebhookAttempt = z.infer<typeof WebhookAttempt>;

export const WebhookDelivery = z
	.object({
		id: z.string().meta({ description: "The `webhook-id` header of every attempt.", example: "msg_01JD2X6B8J3W4Q5R" }),
		event_id: z.string(),
		event_type: WebhookEventType,
		job_id: z.string().nullable().meta({ description: "The job of a `job.*` event; null otherwise." }),
		batch_id: z.string().nullable().meta({ description: "The batch of a `batch.*` event; null otherwise." }),
		url: z.string(),
		status: z.enum(DELIVERY_STATUSES),
		attempts: z.number().int(),
		last_status_code: z.number().int().nullable(),
		last_error: z.string().nullable(),
		created_at: isoTime,
		completed_at: isoTime.nullable(),
		attempt_log: z.array(WebhookAttempt),
	})
	.meta({ id: "WebhookDelivery" });
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

/** A row of `webhook_subscriptions`, as D1 returns it. */
export const SubscriptionRow = z.object({
	id: z.string(),
	url: z.string(),
	/** JSON array of event types. */
	events: z.string(),
	prefix: z.string().nullable(),
	secret: z.string(),
	key_id: z.string().nullable(),
	status: z.enum(["active", "disabled"]),
	disabled_reason: z.string().nullable(),
	created_at: z.number(),
	updated_at: z.number(),
	previous_secret: z.string().nullable(),
	previous_secret_expires_at: z.number().nullable(),
	failing_since: z.number().nullable(),
});
export type SubscriptionRow = z.infer<typeof SubscriptionRow>;

/** A row of `webhook_deliveries`, as D1 returns it. */
export const DeliveryRow = z.object({
	id: z.string(),
	event_id: z.string(),
	/** The subscription it goes to; null: the job's or batch's callback URL. */
	subscription_id: z.string().nullable(),
	/** The callback URL; null for a subscription's delivery, which goes to the subscription's URL. */
	url: z.string().nullable(),
	/** A callback delivery's signing key (NULL: WEBHOOK_SECRET); NULL for subscriptions. */
	key_id: z.string().nullable(),
	status: z.enum(DELIVERY_STATUSES),
	attempts: z.number(),
	last_status_code: z.number().nullable(),
	last_error: z.string().nullable(),
	lease_token: z.string().nullable(),
	lease_expires_at: z.number().nullable(),
	next_attempt_at: z.number().nullable(),
	created_at: z.number(),
	updated_at: z.number(),
	completed_at: z.number().nullable(),
});
export type DeliveryRow = z.infer<typeof DeliveryRow>;

/** A row of `webhook_events` (the outbox), as D1 returns it. */
export const EventRow = z.object({
	id: z.string(),
	job_id: z.string().nullable(),
	batch_id: z.string().nullable(),
	type: WebhookEventType,
	payload: z.string().nullable(),
	created_at: z.number(),
	dispatched_at: z.number().nullable(),
});
export type EventRow = z.infer<typeof EventRow>;

/** A row of `webhook_attempts`, as D1 returns it. */
export const AttemptRow = z.object({
	delivery_id: z.string(),
	attempt: z.number(),
	started_at: z.number(),
	status_code: z.number().nullable(),
	duration_ms: z.number(),
	error: z.string().nullable(),
});
export type AttemptRow = z.infer<typeof AttemptRow>;
