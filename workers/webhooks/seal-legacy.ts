/**
 * Seals the subscription secrets still stored in clear (rows written before
 * migrations/0006_tenancy.sql; a SQL migration cannot run AES-GCM). The webhooks Worker's cron runs
 * it, so after a deployment no clear secret survives one cron period; until then, and if a run
 * fails, senders read the clear form as it is (shared/webhooks/secret-box.ts), so nothing breaks.
 * Each update only replaces the value it read, so a rotation in between is never overwritten.
 */
import { z } from "zod";
import { parseRows } from "../../shared/d1-rows";
import { log } from "../../shared/log";
import { sealSecret, subscriptionSecretId } from "../../shared/webhooks/secret-box";
import { SECRET_PREFIX } from "../../shared/webhooks/sign";

const ClearRow = z.object({ id: z.string(), secret: z.string(), previous_secret: z.string().nullable() });

const CLEAR = `'${SECRET_PREFIX}%'`;

/** Seals up to `limit` rows; returns how many it sealed. Without WEBHOOK_SECRETS_KEY it seals none. */
export async function sealLegacySecrets(db: D1Database, sealingKey: string | undefined, limit = 500): Promise<number> {
	const rows = await db
		.prepare(
			`SELECT id, secret, previous_secret FROM webhook_subscriptions
			WHERE secret LIKE ${CLEAR} OR previous_secret LIKE ${CLEAR} LIMIT ?`,
		)
		.bind(limit)
		.all()
		.then(parseRows(ClearRow));
	if (rows.length === 0) return 0;
	if (!sealingKey) {
		log("warn", "webhook_secrets_unsealed", { rows: rows.length, hint: "set the WEBHOOK_SECRETS_KEY secret" });
		return 0;
	}
	const seal = async (id: string, value: string | null) =>
		value?.startsWith(SECRET_PREFIX) ? sealSecret(sealingKey, subscriptionSecretId(id), value) : value;
	const statements = await Promise.all(
		rows.map(async (row) =>
			db
				.prepare(
					`UPDATE webhook_subscriptions SET secret = ?4, previous_secret = ?5
					WHERE id = ?1 AND secret = ?2 AND previous_secret IS ?3`,
				)
				.bind(
					row.id,
					row.secret,
					row.previous_secret,
					await seal(row.id, row.secret),
					await seal(row.id, row.previous_secret),
				),
		),
	);
	await db.batch(statements);
	log("info", "webhook_secrets_sealed", { rows: rows.length });
	return rows.length;
}
