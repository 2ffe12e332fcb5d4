/**
 * Telling the event hub (shared/events/hub.ts) that events were recorded. Sent after the outbox row
 * committed; a failure is logged and left: the hub reads again within its heartbeat (15 s), and a
 * stream that reconnects replays from D1, so a lost notification delays an event, never loses it.
 */
import { errorMessage, log } from "../log";
import type { EventHub } from "./hub";

/** The hub's name: one per account (docs/events.md says why not one per scope). */
export const HUB_NAME = "account";

/** A Worker's `EVENT_HUB` binding: typed in the consumer (its class), untyped where it is another Worker's. */
type HubNamespace = DurableObjectNamespace | DurableObjectNamespace<EventHub>;

export const eventHub = (namespace: HubNamespace) =>
	(namespace as unknown as DurableObjectNamespace<EventHub>).getByName(HUB_NAME);

export async function notifyEventHub(namespace: HubNamespace, eventIds: string[]): Promise<void> {
	try {
		await eventHub(namespace).notify(eventIds);
	} catch (err) {
		log("warn", "event_hub_notify_failed", { event_ids: eventIds, error: errorMessage(err) });
	}
}
