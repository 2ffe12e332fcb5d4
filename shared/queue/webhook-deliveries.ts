/**
 * Queue message bodies of the `webhook-deliveries` queue: the event of a finished job, to fan out
 * into deliveries, and one delivery to send (or send again).
 */
import { z } from "zod";

/** A job reached its terminal state: make its deliveries (one per matching target). */
export const JobEventMessage = z.object({
	kind: z.literal("job-event"),
	event_id: z.string().startsWith("evt_"),
	job_id: z.string(),
});
export type JobEventMessage = z.infer<typeof JobEventMessage>;

/** Send (or retry) one delivery. */
export const DeliveryMessage = z.object({
	kind: z.literal("delivery"),
	delivery_id: z.string().startsWith("msg_"),
});
export type DeliveryMessage = z.infer<typeof DeliveryMessage>;

export const WebhookMessage = z.discriminatedUnion("kind", [JobEventMessage, DeliveryMessage]);
export type WebhookMessage = z.infer<typeof WebhookMessage>;
