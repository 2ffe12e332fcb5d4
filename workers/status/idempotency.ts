/**
 * Idempotent creates (docs/api.md, "Idempotent creates"): `POST /v1/jobs`, `/v1/batches`,
 * `/v1/webhooks` and `/v1/keys` take an `Idempotency-Key` header. The first request with a key
 * claims it in D1 and runs; its successful answer is kept (sealed: a new key's token is in it) for
 * 24 hours and replayed, with `Idempotent-Replayed: true`, to any retry with the same key and the
 * same request. The same key with another request is a 422; a retry that arrives while the first
 * still runs waits a few seconds for its answer, then gets a 409 with `Retry-After`. An error answer
 * is not kept: the key is free again, so a corrected or later retry goes through.
 *
 * Keys are per principal (the admin, or one API key): the row's id is `<principal>:<key>`.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { parseRow } from "../../shared/d1-rows";
import { idempotencySecretId, sealSecret } from "../../shared/webhooks/secret-box";
import { openWithKeys } from "../../shared/webhooks/secrets-key";
import { ApiError, invalidParam } from "./api-error";
import type { AppEnv } from "./app-env";
import { sha256Hex } from "./auth/tokens";
import { readSettings, sealingKey } from "./settings";

/** How long a first answer is replayed. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** A first request that has not answered in this long is taken as lost (a Worker's request ends well before). */
export const IDEMPOTENCY_LOST_MS = 60_000;
/** How long a retry waits for the first request's answer before a 409. */
const WAIT_MS = 5_000;
const POLL_MS = 100;
/** Expired rows deleted after each create: more than one, so the table shrinks while creates go on. */
const CLEANUP_ROWS = 20;

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";
/** Printable ASCII without spaces at either end, as the IETF draft's examples and Stripe's keys are. */
const KEY_PATTERN = /^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$/;

/** The request header, for the routes' OpenAPI declarations (the middleware checks it first). */
export const IdempotencyHeaders = z.object({
	"idempotency-key": z.string().regex(KEY_PATTERN).optional().meta({
		description:
			"1-255 printable ASCII characters, unique per create (a UUID). A retry with the same key and the same body within 24 hours answers the first answer again (`Idempotent-Replayed: true`) and creates nothing.",
		example: "5f0c1c5e-8f1e-4c55-9d1a-2d6f3c2b9a10",
	}),
});

const IdempotencyRow = z.object({
	id: z.string(),
	fingerprint: z.string(),
	status: z.number().int().nullable(),
	response: z.string().nullable(),
	created_at: z.number().int(),
});
type IdempotencyRow = z.infer<typeof IdempotencyRow>;

type Claim = { kind: "claimed"; createdAt: number } | { kind: "taken"; row: IdempotencyRow } | { kind: "freed" };

/**
 * Claims `id` for this request: a new row, or one whose answer expired or whose first request was
 * lost. Otherwise the row that holds it (or `freed` when it was deleted in between).
 */
async function claim(db: D1Database, id: string, fingerprint: string, now: number): Promise<Claim> {
	const claimed = await db
		.prepare(
			`INSERT INTO idempotency_keys (id, fingerprint, status, response, created_at, expires_at)
			VALUES (?1, ?2, NULL, NULL, ?3, ?4)
			ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint, status = NULL, response = NULL,
				created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE idempotency_keys.expires_at <= excluded.created_at
				OR (idempotency_keys.status IS NULL AND idempotency_keys.created_at <= excluded.created_at - ?5)
			RETURNING id`,
		)
		.bind(id, fingerprint, now, now + IDEMPOTENCY_TTL_MS, IDEMPOTENCY_LOST_MS)
		.first();
	if (claimed !== null) return { kind: "claimed", createdAt: now };
	const row = await db
		.prepare("SELECT id, fingerprint, status, response, created_at FROM idempotency_keys WHERE id = ?1")
		.bind(id)
		.first()
		.then(parseRow(IdempotencyRow));
	return row === null ? { kind: "freed" } : { kind: "taken", row };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function replay(c: Context<AppEnv>, row: IdempotencyRow & { status: number }): Promise<Response> {
	// During a rotation of WEBHOOK_SECRETS_KEY an answer kept before it is still sealed with the old key.
	const keys = { current: sealingKey(c.env), previous: readSettings(c.env).WEBHOOK_SECRETS_KEY_PREVIOUS };
	const body = row.response === null ? null : await openWithKeys(keys, idempotencySecretId(row.id), row.response);
	return new Response(body, {
		status: row.status,
		headers: { "Content-Type": "application/json", [REPLAYED_HEADER]: "true" },
	});
}

/** Keeps a success for replay; frees the key after anything else. Only the claim's own row is touched. */
async function settle(c: Context<AppEnv>, id: string, createdAt: number): Promise<void> {
	const db = c.env.DB;
	const res = c.res;
	if (res.status >= 200 && res.status < 300) {
		const sealed = await sealSecret(sealingKey(c.env), idempotencySecretId(id), await res.clone().text());
		await db
			.prepare(
				"UPDATE idempotency_keys SET status = ?3, response = ?4 WHERE id = ?1 AND created_at = ?2 AND status IS NULL",
			)
			.bind(id, createdAt, res.status, sealed)
			.run();
	} else {
		await db
			.prepare("DELETE FROM idempotency_keys WHERE id = ?1 AND created_at = ?2 AND status IS NULL")
			.bind(id, createdAt)
			.run();
	}
}

/** Deletes a few expired rows, so the table holds about a day of creates without a cron of its own. */
export function deleteExpired(db: D1Database, now: number): Promise<D1Result> {
	return db
		.prepare(
			"DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys WHERE expires_at <= ?1 LIMIT ?2)",
		)
		.bind(now, CLEANUP_ROWS)
		.run();
}

/** The route middleware of a create. Runs after authentication, before the body is validated. */
export const idempotent: MiddlewareHandler<AppEnv> = async (c, next) => {
	const key = c.req.header(IDEMPOTENCY_HEADER);
	if (key === undefined) return next();
	if (!KEY_PATTERN.test(key)) {
		throw invalidParam(IDEMPOTENCY_HEADER, "header", "1 to 255 printable ASCII characters, no space at either end");
	}
	const principal = c.get("principal");
	const id = `${principal.kind === "admin" ? "admin" : principal.id}:${key}`;
	// The body is read once here; the validator after this reads Hono's cached copy.
	const fingerprint = await sha256Hex(`${c.req.method} ${c.req.path}\n${await c.req.text()}`);

	const deadline = Date.now() + WAIT_MS;
	let createdAt: number | undefined;
	while (createdAt === undefined) {
		const outcome = await claim(c.env.DB, id, fingerprint, Date.now());
		if (outcome.kind === "claimed") {
			createdAt = outcome.createdAt;
			break;
		}
		if (outcome.kind === "taken") {
			const { row } = outcome;
			if (row.fingerprint !== fingerprint) {
				throw new ApiError(
					422,
					"idempotency_key_reused",
					`${IDEMPOTENCY_HEADER} ${key} was used for another request; send a new key for a new request`,
				);
			}
			if (row.status !== null) return replay(c, { ...row, status: row.status });
			if (Date.now() >= deadline) {
				throw new ApiError(
					409,
					"idempotency_key_in_use",
					`The first request with ${IDEMPOTENCY_HEADER} ${key} is still running; retry after a second`,
					null,
					{ "Retry-After": "1" },
				);
			}
			await sleep(POLL_MS);
		}
	}
	await next();
	await settle(c, id, createdAt);
	c.executionCtx.waitUntil(deleteExpired(c.env.DB, Date.now()));
};

type Document = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;

/**
 * Adds to every operation that takes the header what it may answer because of it: the replay
 * header on its successes, 409 and 422. One place, as the limit responses are (responses.ts).
 */
export function withIdempotencyResponses(doc: Document): Document {
	const error = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };
	for (const item of Object.values(doc.paths ?? {})) {
		const op = item.post;
		const takesKey = op?.parameters?.some((p) => "name" in p && p.name === "idempotency-key" && p.in === "header");
		if (!op?.responses || !takesKey) continue;
		for (const [status, response] of Object.entries(op.responses)) {
			if (!status.startsWith("2") || "$ref" in response) continue;
			response.headers = {
				...response.headers,
				[REPLAYED_HEADER]: {
					description: "`true` when this is the first answer to an earlier request with the same Idempotency-Key.",
					schema: { type: "string", enum: ["true"] },
				},
			};
		}
		const inUse =
			"`idempotency_key_in_use`: the first request with this Idempotency-Key is still running; retry after `Retry-After` seconds";
		const conflict = op.responses["409"];
		op.responses["409"] =
			conflict && !("$ref" in conflict)
				? { ...conflict, description: `${conflict.description}; or ${inUse}` }
				: {
						description: inUse,
						headers: { "Retry-After": { schema: { type: "integer", minimum: 1 } } },
						content: error,
					};
		op.responses["422"] = {
			description: "`idempotency_key_reused`: this Idempotency-Key was sent with another request",
			content: error,
		};
	}
	return doc;
}
