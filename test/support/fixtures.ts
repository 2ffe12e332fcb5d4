/** Test helpers inside workerd: fixture images, R2 uploads and the notifications R2 would send. */
import { env } from "cloudflare:workers";
import { inject } from "vitest";
import { putObjectNotification, type R2Notification } from "../../shared/queue/caption-jobs";

const cache = new Map<string, Uint8Array>();

export async function fixture(name: string): Promise<Uint8Array> {
	const cached = cache.get(name);
	if (cached) return cached;
	const res = await fetch(`${inject("fixturesUrl")}/${name}`);
	if (!res.ok) throw new Error(`fixture ${name}: ${res.status}`);
	const bytes = new Uint8Array(await res.arrayBuffer());
	cache.set(name, bytes);
	return bytes;
}

let counter = 0;
/** A key no other test uses, so tests do not see each other's jobs. */
export const uniqueKey = (name: string) => `t${Date.now().toString(36)}-${counter++}/${name}`;

/** Puts an object in the local bucket and returns the notification R2 sends for it. */
export async function upload(
	key: string,
	body: Uint8Array | string,
	customMetadata?: Record<string, string>,
): Promise<R2Notification> {
	const object = await env.BUCKET.put(key, body, customMetadata ? { customMetadata } : undefined);
	return putObjectNotification({ bucket: "images", key, size: object.size, etag: object.etag });
}
