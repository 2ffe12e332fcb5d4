/**
 * Webhook secrets at rest (subscriptions' and API keys' `whsec_` secrets, and the kept answers of
 * idempotent creates, which hold new keys' tokens): sealed with AES-256-GCM
 * under a key derived (HKDF-SHA-256) from the Worker secret WEBHOOK_SECRETS_KEY, and bound to the
 * row they belong to (the additional data), so a sealed value copied to another row does not open.
 * The status Worker seals when it creates or rotates a secret; the webhooks Worker opens it to sign.
 *
 * Stored form: `v1.<base64 iv>.<base64 ciphertext+tag>`. A value that is still a clear `whsec_`
 * secret (a row from before migrations/0006_tenancy.sql) opens as itself until the webhooks
 * Worker's cron seals it (`sealLegacySecrets`).
 */
import { fromBase64, SECRET_PREFIX, toBase64 } from "./sign";

const VERSION = "v1";
const encoder = new TextEncoder();

/** Thrown when the key is missing or a sealed value does not open (wrong key, wrong row, tampered). */
export class SecretBoxError extends Error {
	override readonly name = "SecretBoxError";
}

async function aesKey(keyMaterial: string | undefined): Promise<CryptoKey> {
	if (!keyMaterial || keyMaterial.length < 16) {
		throw new SecretBoxError("WEBHOOK_SECRETS_KEY is not set (or shorter than 16 characters)");
	}
	const base = await crypto.subtle.importKey("raw", encoder.encode(keyMaterial), "HKDF", false, ["deriveKey"]);
	return crypto.subtle.deriveKey(
		{ name: "HKDF", hash: "SHA-256", salt: encoder.encode("r2-captions"), info: encoder.encode("webhook-secrets/v1") },
		base,
		{ name: "AES-GCM", length: 256 },
		false,
		["encrypt", "decrypt"],
	);
}

/** Seals `secret` for the row `rowId` (e.g. `webhook_subscriptions:wh_…`). */
export async function sealSecret(keyMaterial: string | undefined, rowId: string, secret: string): Promise<string> {
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const sealed = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: encoder.encode(rowId) },
		await aesKey(keyMaterial),
		encoder.encode(secret),
	);
	return `${VERSION}.${toBase64(iv)}.${toBase64(new Uint8Array(sealed))}`;
}

/** Whether a stored value is a clear secret from before sealing. */
export const isClearSecret = (stored: string): boolean => stored.startsWith(SECRET_PREFIX);

/** The secret a stored value holds (a clear legacy value is returned as it is). */
export async function openSecret(keyMaterial: string | undefined, rowId: string, stored: string): Promise<string> {
	if (isClearSecret(stored)) return stored;
	const [version, iv, sealed] = stored.split(".");
	if (version !== VERSION || iv === undefined || sealed === undefined) {
		throw new SecretBoxError(`The stored secret of ${rowId} is not a sealed secret`);
	}
	try {
		const clear = await crypto.subtle.decrypt(
			{ name: "AES-GCM", iv: fromBase64(iv), additionalData: encoder.encode(rowId) },
			await aesKey(keyMaterial),
			fromBase64(sealed),
		);
		return new TextDecoder().decode(clear);
	} catch (err) {
		if (err instanceof SecretBoxError) throw err;
		throw new SecretBoxError(`The stored secret of ${rowId} does not open with WEBHOOK_SECRETS_KEY`);
	}
}

/** The additional data of a subscription's current or previous secret. */
export const subscriptionSecretId = (id: string) => `webhook_subscriptions:${id}`;
/** The additional data of an API key's callback secret. */
export const keySecretId = (id: string) => `api_keys:${id}`;
/** The additional data of a kept answer to an idempotent create (its id is `<principal>:<key>`). */
export const idempotencySecretId = (id: string) => `idempotency_keys:${id}`;
