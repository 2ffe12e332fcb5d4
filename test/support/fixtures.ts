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

/**
 * `jpeg` with about `bytes` of extended XMP (as cameras write depth maps) after its start of image,
 * in APP1 segments of at most 64 KiB: its frame header, with its dimensions, comes after them all.
 */
export function withExtendedXmp(jpeg: Uint8Array, bytes: number): Uint8Array {
	const signature = new TextEncoder().encode("http://ns.adobe.com/xmp/extension/\0");
	const segment = new Uint8Array(2 + 65535);
	segment.set([0xff, 0xe1, 0xff, 0xff]);
	segment.set(signature, 4);
	for (let i = 4 + signature.length; i < segment.length; i++) segment[i] = (i * 7) & 0xff;
	const count = Math.ceil(bytes / segment.length);
	const out = new Uint8Array(jpeg.length + count * segment.length);
	out.set(jpeg.subarray(0, 2));
	for (let n = 0; n < count; n++) out.set(segment, 2 + n * segment.length);
	out.set(jpeg.subarray(2), 2 + count * segment.length);
	return out;
}

/** A BMP of the given size: 14-byte file header, 40-byte info header (top-down rows), 24-bit black pixels. */
export function bmp(width: number, height: number): Uint8Array {
	const rowBytes = Math.ceil((width * 3) / 4) * 4;
	const size = 54 + rowBytes * height;
	const b = new Uint8Array(size);
	const v = new DataView(b.buffer);
	b.set([0x42, 0x4d]);
	v.setUint32(2, size, true);
	v.setUint32(10, 54, true);
	v.setUint32(14, 40, true);
	v.setInt32(18, width, true);
	v.setInt32(22, -height, true);
	v.setUint16(26, 1, true);
	v.setUint16(28, 24, true);
	return b;
}
