/**
 * One delivery per event and target (a subscription, or the callback: no subscription). No unique
 * index holds it since migrations/0027_caption_once.sql: `webhook_deliveries_once` is on the event
 * alone (an event has a delivery per target, a handful), which saved the subscription's id in every
 * entry. The inserts of a delivery say `WHERE NOT EXISTS` the row below in the same statement (D1
 * runs one at a time), and the trigger `webhook_deliveries_one_per_target` refuses any other insert
 * of a second one.
 */

/** The delivery of event `eventId` to subscription `subscriptionId` (NULL: the callback), as SQL. */
export const deliveryOf = (eventId: string, subscriptionId: string): string =>
	`SELECT 1 FROM webhook_deliveries WHERE event_id = ${eventId} AND coalesce(subscription_id, '') = coalesce(${subscriptionId}, '')`;
