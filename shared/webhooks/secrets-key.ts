/**
 * WEBHOOK_SECRETS_KEY as one value across Workers and over time.
 *
 * - The canary: a row of `secrets_canary` sealed with the key by whichever Worker uses it first.
 *   Each Worker opens it once per isolate before it seals or opens anything; a Worker given a
 *   different key than the one the data was sealed with refuses to run (SecretsKeyMismatch, a 503
 *   from the status API, deliveries held in their queue) rather than seal secrets the other Worker
 *   cannot open, or fail every delivery.
 * - Rotation: with WEBHOOK_SECRETS_KEY_PREVIOUS set to the old key, values still sealed with it
 *   open too, and `resealSecrets` (the webhooks Worker's sweep) seals every one of them again with
 *   the new key, the canary last. `npm run secrets:rotate` sets both secrets on both Workers.
 */
import { z } from "zod";
import { parseRow, parseRows } from "../d1-rows";
import {
	idempotencySecretId,
	keySecretId,
	openSecret,
	SecretBoxError,
	sealSecret,
	subscriptionSecretId,
} from "./secret-box";

export interface SealingKeys {
	current: string | undefined;
	/** The key before a rotation, while values sealed with it remain. */
	previous?: string | undefined;
}

export class SecretsKeyMismatch extends Error {
	override readonly name = "SecretsKeyMismatch";
}

const CANARY_ROW = "secrets_canary:1";
const CANARY_TEXT = "r2-captions: WEBHOOK_SECRETS_KEY canary";
const CanaryRow = z.object({ sealed: z.string() });

/** A stored value opened with the current key, or else the previous one. */
export async function openWithKeys(keys: SealingKeys, rowId: string, stored: string): Promise<string> {
	try {
		return await openSecret(keys.current, rowId, stored);
	} catch (err) {
		if (!(err instanceof SecretBoxError) || !keys.previous) throw err;
		return openSecret(keys.previous, rowId, stored);
	}
}

/** Keys (current|previous) this isolate has already checked against the canary. */
const verified = new Set<string>();

/**
 * Checks that `keys` open the canary (sealing it first when no Worker has yet); throws
 * SecretsKeyMismatch when they do not. One D1 read per isolate and key.
 */
export async function verifySecretsKey(db: D1Database, keys: SealingKeys, now = Date.now()): Promise<void> {
	if (!keys.current) return;
	const id = `${keys.current}\n${keys.previous ?? ""}`;
	if (verified.has(id)) return;
	const read = () => db.prepare("SELECT sealed FROM secrets_canary WHERE id = 1").first().then(parseRow(CanaryRow));
	let canary = await read();
	if (!canary) {
		const sealed = await sealSecret(keys.current, CANARY_ROW, CANARY_TEXT);
		await db
			.prepare("INSERT OR IGNORE INTO secrets_canary (id, sealed, created_at) VALUES (1, ?, ?)")
			.bind(sealed, now)
			.run();
		canary = await read();
	}
	try {
		if ((await openWithKeys(keys, CANARY_ROW, canary?.sealed ?? "")) !== CANARY_TEXT)
			throw new SecretBoxError("canary");
	} catch (err) {
		if (!(err instanceof SecretBoxError)) throw err;
		throw new SecretsKeyMismatch(
			"WEBHOOK_SECRETS_KEY is not the key the stored webhook secrets were sealed with: give this Worker the same value as the other Workers (npm run deploy does), or rotate it with npm run secrets:rotate (docs/security.md)",
		);
	}
	verified.add(id);
}

const SubscriptionSecrets = z.object({ id: z.string(), secret: z.string(), previous_secret: z.string().nullable() });
const SealedColumn = z.object({ id: z.string(), sealed: z.string() });

/**
 * Seals again with the current key every value that only the previous key opens: subscription
 * secrets, API keys' callback secrets, the kept answers of idempotent creates, then the canary.
 * Each update only replaces the value it read, so a rotation in between is never overwritten.
 * Walks each table in pages of `pageSize`.
 * Returns how many rows it changed.
 */
export async function resealSecrets(db: D1Database, keys: SealingKeys, pageSize = 500): Promise<number> {
	const { current, previous } = keys;
	if (!current || !previous) return 0;
	/** The value sealed again with the current key, or null when the current key opens it already. */
	const stale = async (rowId: string, stored: string | null): Promise<string | null> => {
		if (stored === null) return null;
		try {
			await openSecret(current, rowId, stored);
			return null;
		} catch {
			return sealSecret(current, rowId, await openSecret(previous, rowId, stored));
		}
	};
	let changed = 0;
	const run = async (statements: D1PreparedStatement[]) => {
		if (statements.length > 0) await db.batch(statements);
		changed += statements.length;
	};
	/** Walks `sql` (a `WHERE id > ?1 … ORDER BY id LIMIT ?2` select) page by page; `update` says what to write of each row. */
	const walk = async <Row extends { id: string }>(
		sql: string,
		schema: z.ZodType<Row>,
		update: (row: Row) => Promise<D1PreparedStatement | null>,
	) => {
		for (let after = ""; ; ) {
			const rows = await db.prepare(sql).bind(after, pageSize).all().then(parseRows(schema));
			const statements = (await Promise.all(rows.map(update))).filter((s) => s !== null);
			await run(statements);
			if (rows.length < pageSize) return;
			after = rows[rows.length - 1]?.id ?? after;
		}
	};
	await walk(
		"SELECT id, secret, previous_secret FROM webhook_subscriptions WHERE id > ?1 ORDER BY id LIMIT ?2",
		SubscriptionSecrets,
		async (row) => {
			const rowId = subscriptionSecretId(row.id);
			const [secret, older] = await Promise.all([stale(rowId, row.secret), stale(rowId, row.previous_secret)]);
			if (secret === null && older === null) return null;
			return db
				.prepare(
					"UPDATE webhook_subscriptions SET secret = ?4, previous_secret = ?5 WHERE id = ?1 AND secret = ?2 AND previous_secret IS ?3",
				)
				.bind(row.id, row.secret, row.previous_secret, secret ?? row.secret, older ?? row.previous_secret);
		},
	);
	/** A table whose one sealed column is bound to its row by `rowIdOf(id)`. */
	const walkColumn = (table: string, column: string, rowIdOf: (id: string) => string) =>
		walk(
			`SELECT id, ${column} AS sealed FROM ${table} WHERE ${column} IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2`,
			SealedColumn,
			async (row) => {
				const resealed = await stale(rowIdOf(row.id), row.sealed);
				if (resealed === null) return null;
				return db
					.prepare(`UPDATE ${table} SET ${column} = ?3 WHERE id = ?1 AND ${column} = ?2`)
					.bind(row.id, row.sealed, resealed);
			},
		);
	await walkColumn("api_keys", "webhook_secret", keySecretId);
	await walkColumn("idempotency_keys", "response", idempotencySecretId);
	const canary = await db.prepare("SELECT sealed FROM secrets_canary WHERE id = 1").first().then(parseRow(CanaryRow));
	const resealed = canary ? await stale(CANARY_ROW, canary.sealed) : null;
	if (canary && resealed !== null) {
		await run([
			db.prepare("UPDATE secrets_canary SET sealed = ?2 WHERE id = 1 AND sealed = ?1").bind(canary.sealed, resealed),
		]);
	}
	return changed;
}
