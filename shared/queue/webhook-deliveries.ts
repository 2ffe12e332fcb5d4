/**
 * Queue message bodies of the `webhook-deliveries` queue: the event of a finished job or of a
 * settled batch or of a written caption, to fan out into deliveries, and one delivery to send (or send again).
 */
import { z } from "zod";

/** A job reached its terminal state: make its deliveries (one per matching target). */
export const JobEventMessage = z.object({
	kind: z.literal("job-event"),
	event_id: z.string().startsWith("evt_"),
	job_id: z.string(),
});
export type JobEventMessage = z.infer<typeof JobEventMessage>;

/** A batch settled (completed, or cancelled with nothing left running): make its deliveries. */
export const BatchEventMessage = z.object({
	kind: z.literal("batch-event"),
	event_id: z.string().startsWith("evt_"),
	batch_id: z.string(),
});
export type BatchEventMessage = z.infer<typeof BatchEventMessage>;

/** A person wrote a caption: make the deliveries of its `caption.updated` event (its payload is stored). */
export const CaptionEventMessage = z.object({
	kind: z.literal("caption-event"),
	event_id: z.string().startsWith("evt_"),
});
export type CaptionEventMessage = z.infer<typeof CaptionEventMessage>;

export type EventMessage = JobEventMessage | BatchEventMessage | CaptionEventMessage;

/** Send (or retry) one delivery. */
export const DeliveryMessage = z.object({
	kind: z.literal("delivery"),
	delivery_id: z.string().startsWith("msg_"),
});
export type DeliveryMessage = z.infer<typeof DeliveryMessage>;

export const WebhookMessage = z.discriminatedUnion("kind", [
	JobEventMessage,
	BatchEventMessage,
	CaptionEventMessage,
	DeliveryMessage,
]);
export type WebhookMessage = z.infer<typeof WebhookMessage>;
