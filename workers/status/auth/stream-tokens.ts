/**
 * Stream tokens: what a browser's `EventSource` (which cannot send an `Authorization` header) puts
 * in the URL of `GET /v1/events` instead of the API key. A token is short-lived, opens the event
 * stream and nothing else, and carries one scope: the caller who made it (the admin, or one API
 * key with its prefix). It is an HMAC-signed claim (a key derived from WEBHOOK_SECRETS_KEY, used for
 * nothing else), so nothing is stored; a key revoked after it was made is refused on use.
 */
import { z } from "zod";
import { parseRow } from "../../../shared/d1-rows";
import { toHex } from "../../../shared/ids";
import type { Principal } from "./authorisation";

export const STREAM_TOKEN_PREFIX = "rcs_";
export const STREAM_TOKEN_TTL = { default: 300, max: 3600 } as const;

const Claim = z.object({
	/** The API key, or null for the admin. */
	k: z.string().nullable(),
	/** The key's prefix when the token was made. */
	p: z.string().nullable(),
	/** Expiry, milliseconds since the epoch. */
	x: z.number().int(),
});
type Claim = z.infer<typeof Claim>;

const encoder = new TextEncoder();

async function signingKey(secretsKey: string): Promise<CryptoKey> {
	const base = await crypto.subtle.importKey("raw", encoder.encode(secretsKey), "HKDF", false, ["deriveKey"]);
	return crypto.subtle.deriveKey(
		{ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode("r2-captions stream tokens v1") },
		base,
		{ name: "HMAC", hash: "SHA-256", length: 256 },
		false,
		["sign", "verify"],
	);
}

const fromHex = (hex: string) => new Uint8Array((hex.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)));

export async function mintStreamToken(
	secretsKey: string,
	principal: Principal,
	ttlSeconds: number,
	now = Date.now(),
): Promise<{ token: string; expiresAt: number }> {
	const claim: Claim =
		principal.kind === "admin"
			? { k: null, p: null, x: now + ttlSeconds * 1000 }
			: { k: principal.id, p: principal.prefix, x: now + ttlSeconds * 1000 };
	const body = toHex(encoder.encode(JSON.stringify(claim)));
	const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await signingKey(secretsKey), encoder.encode(body)));
	return { token: `${STREAM_TOKEN_PREFIX}${body}.${toHex(mac)}`, expiresAt: claim.x };
}

const LiveKey = z.object({ id: z.string(), prefix: z.string().nullable() });

/**
 * The caller a stream token stands for, or null when it is malformed, forged, expired, or its key
 * was revoked (or its scope changed) since.
 */
export async function verifyStreamToken(
	db: D1Database,
	secretsKey: string,
	token: string,
	now = Date.now(),
): Promise<Principal | null> {
	const match = token.match(/^rcs_([0-9a-f]{2,2048})\.([0-9a-f]{64})$/);
	if (!match?.[1] || !match[2]) return null;
	const [, body, mac] = match;
	const valid = await crypto.subtle.verify("HMAC", await signingKey(secretsKey), fromHex(mac), encoder.encode(body));
	if (!valid) return null;
	const claim = Claim.safeParse(JSON.parse(new TextDecoder().decode(fromHex(body))));
	if (!claim.success || claim.data.x <= now) return null;
	if (claim.data.k === null) return { kind: "admin" };
	const key = await db
		.prepare("SELECT id, prefix FROM api_keys WHERE id = ? AND revoked_at IS NULL")
		.bind(claim.data.k)
		.first()
		.then(parseRow(LiveKey));
	if (!key || key.prefix !== claim.data.p) return null;
	return { kind: "key", id: key.id, prefix: key.prefix };
}
