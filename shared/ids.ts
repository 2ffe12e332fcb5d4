/**
 * Identifiers: time-ordered so that ids sort like their creation time (ULID layout:
 * 48-bit millisecond timestamp + 80 random bits, Crockford base32).
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

export function ulid(now = Date.now()): string {
	let time = "";
	let t = now;
	for (let i = 0; i < 10; i++) {
		time = ALPHABET[t % 32] + time;
		t = Math.floor(t / 32);
	}
	const random = crypto.getRandomValues(new Uint8Array(16));
	let rand = "";
	for (const byte of random) rand += ALPHABET[byte % 32];
	return time + rand;
}

export const newJobId = (now?: number): string => `job_${ulid(now)}`;

/** Bytes as lowercase hex. */
export const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** Random token for leases and secrets, URL-safe. */
export function randomToken(bytes = 16): string {
	return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}
