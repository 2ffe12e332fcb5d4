/**
 * The status Worker's HTTP API (docs/api.md): one OpenAPIHono app whose routes are declared with
 * zod schemas, so `/openapi.json` is generated from the same schemas the handlers validate with.
 * Free of `cloudflare:*` imports so that Node can build the document too (test/node/openapi.test.ts).
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { errorMessage, log } from "../../shared/log";
import { BATCH_PROGRESS_EVENT, WEBHOOK_EVENT_TYPES, WebhookPayload } from "../../shared/webhooks/schema";
import { ApiError, ERROR_CODES, type ErrorStatus } from "./api-error";
import type { AppEnv, DeclaredOperation } from "./app-env";
import { authenticate } from "./auth/authenticate";
import { jsonBodyLimit } from "./capped-body";
import { withIdempotencyResponses } from "./idempotency";
import { allowedMethodsIndex, patternToRegExp, toOpenApiPath } from "./method-not-allowed";
import { rateLimit } from "./quotas";
import { BEARER, json, withLimitResponses } from "./responses";
import { batchRoutes } from "./routes/batches";
import { captionRoutes } from "./routes/captions";
import { dashboardRoutes } from "./routes/dashboard";
import { eventRoutes } from "./routes/events";
import { imageReadRoutes } from "./routes/image-read";
import { imageRoutes } from "./routes/images";
import { jobDeliveryRoutes } from "./routes/job-deliveries";
import { jobRoutes } from "./routes/jobs";
import { keyRoutes } from "./routes/keys";
import { modelRoutes } from "./routes/models";
import { presetRoutes } from "./routes/presets";
import { publicRoutes } from "./routes/public";
import { recoveryRoutes } from "./routes/recovery";
import { statsRoutes } from "./routes/stats";
import { statsSeriesRoutes } from "./routes/stats-series";
import { webhookRoutes } from "./routes/webhooks";
import { secretsKeyCheck } from "./settings";
import { decodableQuery, validationHook } from "./validation";

export const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

app.openAPIRegistry.registerComponent("securitySchemes", BEARER, {
	type: "http",
	scheme: "bearer",
	description: "The ADMIN_TOKEN secret, or an API key created with POST /v1/keys.",
});

// Outgoing webhooks (OpenAPI 3.1 `webhooks`): what a receiver gets, so that clients type it too.
const StandardWebhookHeaders = z.object({
	"webhook-id": z.string().meta({ description: "Stable across retries of one event: deduplicate on it." }),
	"webhook-timestamp": z.string().meta({ description: "Unix seconds of this attempt." }),
	"webhook-signature": z.string().meta({
		description: "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`; verify with the `standardwebhooks` library.",
	}),
});
for (const type of WEBHOOK_EVENT_TYPES) {
	app.openAPIRegistry.registerWebhook({
		method: "post",
		path: type,
		// job.succeeded -> jobSucceededEvent, batch.completed -> batchCompletedEvent
		operationId: `${type.replace(/\.(\w)/, (_, c: string) => c.toUpperCase())}Event`,
		summary:
			type === BATCH_PROGRESS_EVENT
				? `\`${type}\` (opt-in): a running batch's counts, rate and ETA, at most once a minute per batch`
				: type.startsWith("caption.")
					? `\`${type}\`: a person wrote an object's caption (sent only to subscriptions that list it)`
					: `\`${type}\`: a ${type.startsWith("batch.") ? "batch" : "job"} reached this terminal state`,
		description: "Signed per Standard Webhooks with the subscription's `whsec_` secret (or `WEBHOOK_SECRET`).",
		security: [],
		request: {
			headers: StandardWebhookHeaders,
			body: { required: true, content: { "application/json": { schema: WebhookPayload } } },
		},
		responses: {
			200: { description: "Any 2xx acknowledges the delivery; 5xx, 429 and timeouts are retried; 410 disables." },
		},
	});
}

/**
 * Where the API runs: `npm run dev`, and a deployment on workers.dev. `/openapi.json` puts the
 * origin it was fetched from first, so a generator pointed at a deployment targets that deployment.
 */
const SERVERS = [
	{ url: "http://localhost:8787", description: "Local development (`npm run dev`)" },
	{
		url: "https://r2-captions-status.{subdomain}.workers.dev",
		description: "Deployed with `npm run deploy`",
		variables: { subdomain: { default: "your-subdomain", description: "Your account's workers.dev subdomain" } },
	},
];

/** The OpenAPI 3.1 document of every route of `app`; `/openapi.json` serves this, with its origin first. */
export function openApiDocument() {
	const doc = app.getOpenAPI31Document({
		openapi: "3.1.0",
		info: {
			title: "r2-captions status API",
			version: "1.0.0",
			description:
				"Upload images, follow their captioning jobs, caption whole prefixes as batches and export their results, manage API keys and webhooks. Object keys are sent in " +
				"one path segment, percent-encoded: `PUT /v1/images/photos%2Fcat.jpg` stores `photos/cat.jpg` (as " +
				"generated clients send it); unencoded slashes are accepted too.",
		},
		servers: SERVERS,
	});
	return withIdempotencyResponses(withLimitResponses(doc));
}

const openApiRoute = createRoute({
	method: "get",
	path: "/openapi.json",
	operationId: "getOpenApiDocument",
	summary: "This OpenAPI 3.1 document",
	security: [],
	responses: { 200: json(z.record(z.string(), z.unknown()), "The OpenAPI document") },
});

let cachedDocument: ReturnType<typeof openApiDocument> | undefined;

let declared: (DeclaredOperation & { method: string; path: RegExp })[] | undefined;

/**
 * The operation a request goes to, read from the routes' declarations (the registry the OpenAPI
 * document is made from) once: reading them costs nothing, making the document tens of
 * milliseconds, which every isolate's first request would pay.
 */
function declaredOperation(method: string, path: string): DeclaredOperation | undefined {
	declared ??= declareOperations();
	return declared.find((o) => o.method === method && o.path.test(path));
}

function declareOperations(): (DeclaredOperation & { method: string; path: RegExp })[] {
	const routes = new Map(
		app.openAPIRegistry.definitions.flatMap((d) =>
			d.type === "route" ? [[`${d.route.method.toUpperCase()} ${d.route.path}`, d.route] as const] : [],
		),
	);
	// A route's middleware is registered under its method and path too: one entry each.
	const patterns = new Map(app.routes.map((r) => [`${r.method} ${r.path}`, r] as const));
	return [...patterns.values()].flatMap((r) => {
		const route = routes.get(`${r.method} ${toOpenApiPath(r.path)}`);
		if (route === undefined) return [];
		const query = route.request?.query;
		return [
			{
				method: r.method,
				path: patternToRegExp(r.path),
				jsonBody: route.request?.body?.content["application/json"] !== undefined,
				query: new Set(query !== undefined && "shape" in query ? Object.keys(query.shape) : []),
			},
		];
	});
}

/** Looks up the request's operation once, for the query and body checks after it. */
const declareOperation: MiddlewareHandler<AppEnv> = async (c, next) => {
	c.set("operation", declaredOperation(c.req.method, c.req.path));
	await next();
};

app.openapi(openApiRoute, (c) => {
	cachedDocument ??= openApiDocument();
	const origin = new URL(c.req.url).origin;
	const servers = [{ url: origin, description: "This server" }, ...SERVERS.filter((s) => s.url !== origin)];
	return c.json({ ...cachedDocument, servers }, 200);
});
app.route("/", publicRoutes);
app.route("/", dashboardRoutes);

// Everything under /v1 needs a token, then is within its key's request rate and the JSON body
// limit; registered before the routes so they run first.
app.use("/v1/*", secretsKeyCheck, authenticate, rateLimit, declareOperation, decodableQuery, jsonBodyLimit);
app.route("/", imageRoutes);
app.route("/", imageReadRoutes);
app.route("/", jobRoutes);
app.route("/", jobDeliveryRoutes);
app.route("/", batchRoutes);
app.route("/", presetRoutes);
app.route("/", captionRoutes);
app.route("/", statsRoutes);
app.route("/", modelRoutes);
app.route("/", statsSeriesRoutes);
app.route("/", keyRoutes);
app.route("/", webhookRoutes);
app.route("/", recoveryRoutes);
app.route("/", eventRoutes);

function render(c: Context<AppEnv>, err: ApiError): Response {
	return c.json(err.toBody(), err.status, err.headers);
}

let allowedMethods: ((path: string) => string[]) | undefined;
app.notFound((c) => {
	allowedMethods ??= allowedMethodsIndex(app.routes);
	const allowed = allowedMethods(c.req.path);
	if (allowed.length > 0) {
		const message = `${c.req.method} is not allowed on ${c.req.path}`;
		const headers = { Allow: allowed.join(", ") };
		return render(c, new ApiError(405, ERROR_CODES[405], message, { allow: allowed }, headers));
	}
	return render(c, new ApiError(404, ERROR_CODES[404], `No route for ${c.req.method} ${c.req.path}`));
});

app.onError((err, c) => {
	if (err instanceof ApiError) return render(c, err);
	if (err instanceof HTTPException && err.status in ERROR_CODES && err.status < 500) {
		const status = err.status as ErrorStatus;
		// Hono raises these itself, e.g. 400 for a malformed JSON body, 415 for a wrong Content-Type.
		const details = status === 400 ? [{ field: "body", in: "body" as const, message: err.message }] : null;
		return render(c, new ApiError(status, ERROR_CODES[status], err.message, details));
	}
	log("error", "request_failed", { method: c.req.method, path: c.req.path, error: errorMessage(err) });
	return render(c, new ApiError(500, ERROR_CODES[500], "Internal error"));
});
