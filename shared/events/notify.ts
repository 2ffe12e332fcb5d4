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

/**
 * Ends the open streams of a revoked key (shared/events/hub.ts). The key is revoked in D1 first, so
 * no new stream opens; a failure here is logged and leaves the open ones until they reconnect,
 * which is refused.
 */
export async function closeStreamsOf(namespace: HubNamespace, keyId: string): Promise<void> {
	try {
		const closed = await eventHub(namespace).closeStreamsOf(keyId);
		if (closed > 0) log("info", "event_streams_closed", { key_id: keyId, streams: closed });
	} catch (err) {
		log("warn", "event_hub_close_failed", { key_id: keyId, error: errorMessage(err) });
	}
}
