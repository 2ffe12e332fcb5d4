/**
 * `GET /v1/events`: the caller's events as Server-Sent Events (docs/events.md), served by the event
 * hub (shared/events/hub.ts): this route checks the request and hands it over. `POST
 * /v1/events/tokens`: a short-lived stream token for a browser's EventSource (auth/stream-tokens.ts).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { getBatchRow } from "../../../shared/batches/read";
import type { OpenStream } from "../../../shared/events/hub";
import { eventHub } from "../../../shared/events/notify";
import { EventIdParam, eventIdOf, headPosition } from "../../../shared/events/stream-events";
import { WEBHOOK_EVENT_TYPES } from "../../../shared/webhooks/schema";
import { invalidParam, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { principalKeyId, scopePrefix } from "../auth/authorisation";
import { mintStreamToken, STREAM_TOKEN_TTL } from "../auth/stream-tokens";
import { authenticated, errors, json } from "../responses";
import { sealingKey } from "../settings";
import { validationHook } from "../validation";

const EventsQuery = z.object({
	batch_id: z.string().min(1).max(64).optional().meta({ description: "Only this batch's events and its jobs'." }),
	prefix: z
		.string()
		.min(1)
		.max(1024)
		.optional()
		.meta({ description: "Only jobs whose object key starts with this, and batches whose key prefix does." }),
	types: z
		.string()
		.optional()
		.meta({ description: `Comma-separated event types (${WEBHOOK_EVENT_TYPES.join(", ")}); default: all.` }),
	after: z.string().optional().meta({
		description:
			"Replay every retained event after this event id, then go live (for clients that cannot send `Last-Event-ID`; the header wins when both are sent). 400 for an id above the newest event's.",
	}),
	token: z.string().optional().meta({
		description:
			"A stream token (`rcs_…`, from POST /v1/events/tokens) instead of the Authorization header, for EventSource. API keys are never accepted here.",
	}),
});

const EventsHeaders = z.object({
	"last-event-id": z.string().optional().meta({
		description:
			"The `id:` of the last event received: the stream replays every retained event after it, then goes live. 400 for an id above the newest event's.",
	}),
});

const streamRoute = createRoute({
	method: "get",
	path: "/v1/events",
	operationId: "streamEvents",
	summary: "Follow the caller's events as they happen (Server-Sent Events)",
	description:
		"A `text/event-stream` of the events in the caller's scope: each has `id:` (opaque, ordered), `event:` (the type) and `data:` (the JSON body the webhook of that type carries). A comment line comes every 15 s. Events are retained as long as webhook events (RETENTION_WEBHOOKS_DAYS, 7 days by default).",
	security: authenticated,
	request: { query: EventsQuery, headers: EventsHeaders },
	responses: {
		200: {
			description: "The stream; it stays open until the client closes it",
			content: {
				"text/event-stream": {
					schema: z.string().meta({
						example:
							'id: 000000000000042\nevent: job.succeeded\ndata: {"type":"job.succeeded","timestamp":"…","data":{…}}\n\n',
					}),
				},
			},
		},
		...errors(400, 401, 404),
	},
});

const TokenBody = z
	.strictObject({
		ttl_seconds: z
			.number()
			.int()
			.min(1)
			.max(STREAM_TOKEN_TTL.max)
			.default(STREAM_TOKEN_TTL.default)
			.meta({ description: "How long the token opens streams (a stream already open stays open)." }),
	})
	.meta({ id: "CreateStreamToken" });

export const StreamToken = z
	.object({
		token: z.string().meta({ description: "Pass as `?token=` to GET /v1/events.", example: "rcs_7b226b22…" }),
		expires_at: z.iso.datetime(),
		prefix: z
			.string()
			.nullable()
			.meta({ description: "The scope of its streams: the key's prefix (null: everything the caller sees)." }),
	})
	.meta({ id: "StreamToken" });

const createTokenRoute = createRoute({
	method: "post",
	path: "/v1/events/tokens",
	operationId: "createStreamToken",
	summary: "A short-lived token that opens GET /v1/events (for EventSource)",
	description:
		"The token stands for the caller (the same scope) and opens the event stream only; it expires after `ttl_seconds` and stops working when its key is revoked.",
	security: authenticated,
	request: { body: { required: false, content: { "application/json": { schema: TokenBody } } } },
	responses: { 201: json(StreamToken, "The token"), ...errors(400, 401, 415, 503) },
});

/** `types=a,b`: each a known event type. */
function parseTypes(types: string | undefined): string[] | null {
	if (types === undefined) return null;
	const list = types.split(",").map((t) => t.trim());
	const unknown = list.filter((t) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t));
	if (unknown.length > 0) {
		throw invalidParam("types", "query", `Unknown event type ${unknown.join(", ")}: ${WEBHOOK_EVENT_TYPES.join(", ")}`);
	}
	return list;
}

/**
 * `Last-Event-ID` or `after`: an id this stream could have sent, so at most the newest event's (a
 * larger one would be skipped to silently, every event up to it unsent). Event ids are never reused
 * (retention keeps the newest event: workers/consumer/retention-kinds.ts), so an id a stream sent
 * stays valid.
 */
async function parseAfter(
	db: D1Database,
	value: string | undefined,
	field: string,
	location: "query" | "header",
): Promise<number | null> {
	if (value === undefined || value === "") return null;
	const parsed = EventIdParam.safeParse(value);
	if (!parsed.success) throw invalidParam(field, location, parsed.error.issues[0]?.message ?? "Not an event id");
	if (parsed.data > 0) {
		const head = await headPosition(db);
		if (parsed.data > head) {
			throw invalidParam(field, location, `No event has this id yet: the newest is ${eventIdOf(head)}`);
		}
	}
	return parsed.data;
}

export const eventRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(streamRoute, async (c) => {
		const query = c.req.valid("query");
		const headers = c.req.valid("header");
		const principal = c.get("principal");
		const scope = scopePrefix(principal);
		const types = parseTypes(query.types);
		const after =
			(await parseAfter(c.env.DB, headers["last-event-id"], "Last-Event-ID", "header")) ??
			(await parseAfter(c.env.DB, query.after, "after", "query"));
		if (query.batch_id !== undefined && !(await getBatchRow(c.env.DB, query.batch_id, scope))) {
			throw notFound(`Batch ${query.batch_id}`);
		}
		const open: OpenStream = {
			filter: { scope, prefix: query.prefix ?? null, batchId: query.batch_id ?? null, types },
			after,
			keyId: principalKeyId(principal),
		};
		const request = new Request("https://event-hub/stream", { method: "POST", body: JSON.stringify(open) });
		// The hub's response is the stream; its body is passed through as it is.
		return (await eventHub(c.env.EVENT_HUB).fetch(request)) as never;
	})
	.openapi(createTokenRoute, async (c) => {
		// An empty body takes every default.
		const ttl = c.req.valid("json")?.ttl_seconds ?? STREAM_TOKEN_TTL.default;
		const principal = c.get("principal");
		const { token, expiresAt } = await mintStreamToken(sealingKey(c.env), principal, ttl);
		return c.json({ token, expires_at: new Date(expiresAt).toISOString(), prefix: scopePrefix(principal) }, 201);
	});
