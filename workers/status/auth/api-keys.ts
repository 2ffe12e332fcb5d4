/**
 * API keys in D1 (migrations/0002_api_keys.sql) and their public JSON. Keys are found by the
 * digest of the presented token; the token itself exists only in the creation response.
 */
import { z } from "zod";
import { batchRows, parseRow, parseRows } from "../../../shared/d1-rows";
import { ulid } from "../../../shared/ids";
import { keySecretId, sealSecret } from "../../../shared/webhooks/secret-box";
import { newWebhookSecret } from "../../../shared/webhooks/sign";
import { disableKeySubscriptions } from "../webhooks/subscriptions";
import { newApiKeyToken, sha256Hex, tokenHint } from "./tokens";

export const ApiKey = z
	.object({
		id: z.string().meta({ example: "key_01JD2X6B8J3W4Q5R6S7T8V9W0X" }),
		name: z.string().nullable(),
		prefix: z
			.string()
			.nullable()
			.meta({ description: "Object-key prefix this key is limited to; null for every key." }),
		token_hint: z.string().meta({ example: "rck_3f9a1c…" }),
		created_at: z.iso.datetime(),
		revoked_at: z.iso.datetime().nullable(),
	})
	.meta({ id: "ApiKey" });
export type ApiKey = z.infer<typeof ApiKey>;

/** The creation response: the only time the token and the key's webhook secret are ever shown. */
export const CreatedApiKey = ApiKey.extend({
	token: z.string().meta({ description: "The bearer token. Shown once; store it now." }),
	webhook_secret: z.string().meta({
		description:
			"The `whsec_` secret that signs callbacks (`callback_url`, `X-Callback-Url`) of jobs and batches made with this key. Shown once.",
		example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}),
}).meta({ id: "CreatedApiKey" });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

/** A row of `api_keys`, as D1 returns it. */
const ApiKeyRow = z.object({
	id: z.string(),
	name: z.string().nullable(),
	prefix: z.string().nullable(),
	token_hash: z.string(),
	token_hint: z.string(),
	created_at: z.number(),
	revoked_at: z.number().nullable(),
});
type ApiKeyRow = z.infer<typeof ApiKeyRow>;

const toApiKey = (row: ApiKeyRow): ApiKey => ({
	id: row.id,
	name: row.name,
	prefix: row.prefix,
	token_hint: row.token_hint,
	created_at: new Date(row.created_at).toISOString(),
	revoked_at: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
});

export async function createApiKey(
	db: D1Database,
	input: { name: string | null; prefix: string | null },
	sealingKey: string,
	now = Date.now(),
): Promise<CreatedApiKey> {
	const token = newApiKeyToken();
	const id = `key_${ulid(now)}`;
	const webhookSecret = newWebhookSecret();
	const sealed = await sealSecret(sealingKey, keySecretId(id), webhookSecret);
	const row = await db
		.prepare(
			`INSERT INTO api_keys (id, name, prefix, token_hash, token_hint, created_at, webhook_secret)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
		)
		.bind(id, input.name, input.prefix, await sha256Hex(token), tokenHint(token), now, sealed)
		.first()
		.then(parseRow(ApiKeyRow));
	if (!row) throw new Error("api key insert returned no row");
	return { ...toApiKey(row), token, webhook_secret: webhookSecret };
}

/** The key with a new callback secret, shown this once. */
export const RotatedApiKeySecret = ApiKey.extend({
	webhook_secret: CreatedApiKey.shape.webhook_secret,
}).meta({ id: "RotatedApiKeySecret" });
export type RotatedApiKeySecret = z.infer<typeof RotatedApiKeySecret>;

export type RotateKeySecretResult =
	| { kind: "missing" }
	| { kind: "revoked"; key: ApiKey }
	| { kind: "rotated"; key: RotatedApiKeySecret };

/**
 * Gives a live key a new callback secret (sealed like the first). Callbacks sent from then on are
 * signed with it; one already signed keeps its signature.
 */
export async function rotateApiKeySecret(
	db: D1Database,
	id: string,
	sealingKey: string,
): Promise<RotateKeySecretResult> {
	const webhookSecret = newWebhookSecret();
	const sealed = await sealSecret(sealingKey, keySecretId(id), webhookSecret);
	const row = await db
		.prepare("UPDATE api_keys SET webhook_secret = ?2 WHERE id = ?1 AND revoked_at IS NULL RETURNING *")
		.bind(id, sealed)
		.first()
		.then(parseRow(ApiKeyRow));
	if (row) return { kind: "rotated", key: { ...toApiKey(row), webhook_secret: webhookSecret } };
	const existing = await db.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first().then(parseRow(ApiKeyRow));
	return existing ? { kind: "revoked", key: toApiKey(existing) } : { kind: "missing" };
}

export async function listApiKeys(db: D1Database): Promise<ApiKey[]> {
	const results = await db
		.prepare("SELECT * FROM api_keys ORDER BY created_at DESC, id DESC")
		.all()
		.then(parseRows(ApiKeyRow));
	return results.map(toApiKey);
}

export type RevokeResult =
	| { kind: "revoked"; key: ApiKey }
	| { kind: "already-revoked"; key: ApiKey }
	| { kind: "missing" };

/**
 * Revokes a key and, in the same transaction, disables the subscriptions it created (kept, with
 * the reason `key_revoked`, so their delivery log stays readable; the fan-out skips them).
 */
export async function revokeApiKey(db: D1Database, id: string, now = Date.now()): Promise<RevokeResult> {
	const [revoked] = await db.batch([
		db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *").bind(now, id),
		disableKeySubscriptions(db, id, now),
	]);
	const row = batchRows(revoked, ApiKeyRow)[0];
	if (row) return { kind: "revoked", key: toApiKey(row) };
	const existing = await db.prepare("SELECT * FROM api_keys WHERE id = ?").bind(id).first().then(parseRow(ApiKeyRow));
	return existing ? { kind: "already-revoked", key: toApiKey(existing) } : { kind: "missing" };
}

const LiveKey = ApiKeyRow.pick({ id: true, prefix: true, token_hash: true });

/** The live (not revoked) key whose token has this SHA-256 digest. */
export async function findLiveKeyByHash(db: D1Database, tokenHash: string): Promise<z.infer<typeof LiveKey> | null> {
	return db
		.prepare("SELECT id, prefix, token_hash FROM api_keys WHERE token_hash = ? AND revoked_at IS NULL")
		.bind(tokenHash)
		.first()
		.then(parseRow(LiveKey));
}
