/**
 * Bearer tokens: API key generation, the SHA-256 digest that is stored instead of the token, and
 * constant-time comparison (comparing fixed-length digests, so neither content nor length leaks).
 */
import { randomToken } from "../../../shared/ids";

/** Every API key starts with this, so that leaked keys are easy to recognise and search for. */
export const API_KEY_PREFIX = "rck_";

export const newApiKeyToken = (): string => `${API_KEY_PREFIX}${randomToken(32)}`;

/** How a key is shown in listings: enough to tell keys apart, nothing that helps guess one. */
export const tokenHint = (token: string): string => `${token.slice(0, API_KEY_PREFIX.length + 6)}…`;

export async function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

export async function sha256Hex(text: string): Promise<string> {
	const digest = new Uint8Array(await sha256(text));
	return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether two secrets are equal, in time independent of where they differ and of their lengths. */
export async function secretsEqual(given: string, expected: string): Promise<boolean> {
	const [a, b] = await Promise.all([sha256(given), sha256(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

/** `Authorization: Bearer <token>` → the token, or null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
	const match = header?.match(/^Bearer[ \t]+(\S+)[ \t]*$/i);
	return match?.[1] ?? null;
}
