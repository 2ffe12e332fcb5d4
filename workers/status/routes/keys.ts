/**
 * API key management (admin only): create (the token is in this response and nowhere else, ever),
 * list, revoke. A key may be limited to an object-key prefix. A key also gets its own webhook
 * secret (shown once) for the callbacks of its jobs; revoking it disables its subscriptions.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { closeStreamsOf } from "../../../shared/events/notify";
import { ApiError, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import {
	ApiKey,
	CreatedApiKey,
	createApiKey,
	listApiKeys,
	RotatedApiKeySecret,
	revokeApiKey,
	rotateApiKeySecret,
} from "../auth/api-keys";
import { requireAdmin } from "../auth/authorisation";
import { IdempotencyHeaders, idempotent } from "../idempotency";
import { authenticated, errors, json } from "../responses";
import { sealingKey } from "../settings";
import { ObjectKey, validationHook } from "../validation";

const adminOnly = requireAdmin("manage API keys");

const CreateApiKeyBody = z
	.strictObject({
		name: z.string().trim().min(1).max(200).optional().meta({ description: "A label for people." }),
		prefix: z
			.string()
			.max(1024)
			// A scope is a folder: "customers/4" would also reach "customers/42/…".
			.refine(
				(prefix) => prefix.endsWith("/"),
				"Must be a folder, ending with / (customers/4 would also reach customers/42/)",
			)
			// A folder no object key can be in (`../`, `a//`, `/`) would make a key that can do nothing.
			.superRefine((prefix, ctx) => {
				const inside = ObjectKey.safeParse(`${prefix}x`);
				if (!inside.success) {
					ctx.addIssue({ code: "custom", message: `No object key can be in it: ${inside.error.issues[0]?.message}` });
				}
			})
			.optional()
			.meta({
				description:
					"Limit the key to object keys under this folder, e.g. `customers/42/`. Must end with `/`, so that `customers/4/` never reaches `customers/42/…`.",
			}),
	})
	.meta({ id: "CreateApiKey" });

const ApiKeyList = z
	.object({
		data: z.array(ApiKey),
		next_cursor: z.null().meta({ description: "Always null: keys come in a single page." }),
	})
	.meta({ id: "ApiKeyList" });

const createKeyRoute = createRoute({
	method: "post",
	path: "/v1/keys",
	operationId: "createApiKey",
	summary: "Create an API key (admin)",
	security: authenticated,
	middleware: [adminOnly, idempotent] as const,
	request: {
		headers: IdempotencyHeaders,
		body: { required: true, content: { "application/json": { schema: CreateApiKeyBody } } },
	},
	responses: {
		201: json(CreatedApiKey, "The key, with its token and webhook secret shown this once"),
		...errors(400, 401, 403, 415, 503),
	},
});

const listKeysRoute = createRoute({
	method: "get",
	path: "/v1/keys",
	operationId: "listApiKeys",
	summary: "List API keys (admin)",
	security: authenticated,
	middleware: adminOnly,
	responses: { 200: json(ApiKeyList, "All keys, revoked ones included, without tokens"), ...errors(401, 403) },
});

const revokeKeyRoute = createRoute({
	method: "delete",
	path: "/v1/keys/{id}",
	operationId: "revokeApiKey",
	summary:
		"Revoke an API key (admin); the webhook subscriptions it created are disabled (`key_revoked`) and its open event streams end",
	security: authenticated,
	middleware: adminOnly,
	request: { params: z.object({ id: z.string().min(1) }) },
	responses: { 200: json(ApiKey, "The revoked key"), ...errors(401, 403, 404, 409) },
});

const rotateKeySecretRoute = createRoute({
	method: "post",
	path: "/v1/keys/{id}/rotate-secret",
	operationId: "rotateApiKeySecret",
	summary: "Give an API key a new callback secret (admin)",
	description:
		"Returns the key's new `whsec_` secret, shown this once. Callbacks of its jobs and batches sent from now on are signed with it; the old one stops at once (a key's callbacks have no overlap period). A revoked key answers 409.",
	security: authenticated,
	middleware: adminOnly,
	request: { params: z.object({ id: z.string().min(1) }) },
	responses: {
		200: json(RotatedApiKeySecret, "The key, with its new webhook secret shown this once"),
		...errors(401, 403, 404, 409, 503),
	},
});

export const keyRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(createKeyRoute, async (c) => {
		const body = c.req.valid("json");
		const key = await createApiKey(
			c.env.DB,
			{ name: body.name ?? null, prefix: body.prefix ?? null },
			sealingKey(c.env),
		);
		return c.json(key, 201);
	})
	.openapi(rotateKeySecretRoute, async (c) => {
		const { id } = c.req.valid("param");
		const result = await rotateApiKeySecret(c.env.DB, id, sealingKey(c.env));
		switch (result.kind) {
			case "missing":
				throw notFound(`API key ${id}`);
			case "revoked":
				throw new ApiError(409, "already_revoked", `API key ${id} is revoked`, { revoked_at: result.key.revoked_at });
			case "rotated":
				return c.json(result.key, 200);
		}
	})
	.openapi(listKeysRoute, async (c) => c.json({ data: await listApiKeys(c.env.DB), next_cursor: null }, 200))
	.openapi(revokeKeyRoute, async (c) => {
		const { id } = c.req.valid("param");
		const result = await revokeApiKey(c.env.DB, id);
		switch (result.kind) {
			case "missing":
				throw notFound(`API key ${id}`);
			case "already-revoked":
				throw new ApiError(409, "already_revoked", `API key ${id} was already revoked`, {
					revoked_at: result.key.revoked_at,
				});
			case "revoked":
				await closeStreamsOf(c.env.EVENT_HUB, id);
				return c.json(result.key, 200);
		}
	});
