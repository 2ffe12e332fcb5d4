/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): `whsec_` secrets whose base64 part
 * is the HMAC key, and the `webhook-id` / `webhook-timestamp` / `webhook-signature` headers, where
 * the signature is `v1,` + base64(HMAC-SHA256(key, `${id}.${timestamp}.${body}`)). WebCrypto only.
 */

export const SECRET_PREFIX = "whsec_";
/** 24 random bytes, as the Standard Webhooks reference libraries generate. */
const SECRET_BYTES = 24;

export function toBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
	const binary = atob(text);
	return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function newWebhookSecret(): string {
	return SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** Whether a string is a usable `whsec_` secret (a non-empty base64 key). */
export function isWebhookSecret(secret: string): boolean {
	if (!secret.startsWith(SECRET_PREFIX)) return false;
	try {
		return fromBase64(secret.slice(SECRET_PREFIX.length)).length > 0;
	} catch {
		return false;
	}
}

/** `v1,<base64 HMAC>` of one message. Throws if the secret is not a `whsec_` secret. */
export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
	if (!isWebhookSecret(secret)) throw new Error("The webhook secret is not a whsec_ secret");
	const key = await crypto.subtle.importKey(
		"raw",
		fromBase64(secret.slice(SECRET_PREFIX.length)),
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`));
	return `v1,${toBase64(new Uint8Array(mac))}`;
}

/**
 * The headers of one attempt: the id is fixed per delivery, the timestamp is the attempt's. With
 * several secrets (a rotation's overlap: the new one first) the signature header carries one
 * signature per secret, space-separated, as Standard Webhooks allows: a receiver holding either
 * secret accepts the delivery.
 */
export async function webhookHeaders(
	secrets: string | readonly string[],
	id: string,
	body: string,
	now = Date.now(),
): Promise<Record<string, string>> {
	const timestamp = Math.floor(now / 1000);
	const list = typeof secrets === "string" ? [secrets] : secrets;
	if (list.length === 0) throw new Error("A webhook needs at least one secret to be signed");
	const signatures = await Promise.all(list.map((secret) => signWebhook(secret, id, timestamp, body)));
	return {
		"content-type": "application/json",
		"user-agent": "r2-captions-webhooks/1",
		"webhook-id": id,
		"webhook-timestamp": String(timestamp),
		"webhook-signature": signatures.join(" "),
	};
}
