/**
 * The typed client of the r2-captions status API: openapi-fetch over the types that
 * openapi-typescript generates from the API's own OpenAPI document (client/schema.ts, made by
 * `npm run client:generate` and checked by `npm test`). No Node imports: the CLI, the demo, the
 * bench and the dashboard (as workers/status/assets/dashboard/client.js, the bundle
 * `npm run client:generate` makes of this module) all use this one module.
 *
 *   const api = createR2cClient({ baseUrl: "http://localhost:8787", token });
 *   const job = await ok(api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema.ts";

export type { paths } from "./schema.ts";
export type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type JobStatus = Schemas["JobStatus"];
export type JobList = Schemas["JobList"];
export type Stats = Schemas["Stats"];
/** A model of the chain with its health (`GET /v1/models`). */
export type Model = Schemas["Model"];
export type WebhookEventType = Schemas["WebhookEventType"];
/** The body of every webhook delivery. */
export type WebhookPayload = Schemas["WebhookPayload"];
export type WebhookSubscription = Schemas["WebhookSubscription"];
export type CreatedWebhookSubscription = Schemas["CreatedWebhookSubscription"];
export type ErrorBody = Schemas["Error"];
export type Batch = Schemas["Batch"];
export type BatchStatus = Schemas["BatchStatus"];
export type BatchList = Schemas["BatchList"];
/** The formats of `GET /v1/batches/{id}/results`. */
export type ExportFormat = NonNullable<
	NonNullable<paths["/v1/batches/{id}/results"]["get"]["parameters"]["query"]>["format"]
>;

export type R2cClient = Client<paths>;

/** Every job status, and whether a job ever leaves it (a status added to the API fails to compile here). */
const TERMINAL: Record<JobStatus, boolean> = {
	queued: false,
	processing: false,
	succeeded: true,
	failed: true,
	cancelled: true,
};
export const JOB_STATUSES = Object.keys(TERMINAL) as JobStatus[];
export const isTerminal = (status: JobStatus): boolean => TERMINAL[status];

export interface ClientOptions {
	/** Where the status API answers, e.g. `http://localhost:8787`. */
	baseUrl: string;
	/** The admin token or an API key; sent as `Authorization: Bearer …`. */
	token?: string;
	fetch?: typeof globalThis.fetch;
	/**
	 * How many times a call the API refused with `429` (an API key's quota) is sent again, each
	 * after the `Retry-After` it was given (default 5; 0 returns the 429 at once). Creates, which
	 * carry an `Idempotency-Key`, are also sent again after a network error or a 502-504.
	 */
	retries429?: number;
	/** Told before each such wait (the CLI prints it). */
	onRateLimited?: (waitSeconds: number, request: Request) => void;
}

/** Longest wait honoured from one `Retry-After`, in seconds. */
const MAX_RETRY_AFTER_SECONDS = 60;

/** How long a `429` asks to wait: its `Retry-After` in seconds (at most a minute; one when unreadable). */
export function retryAfterSeconds(header: string | null): number {
	const given = Number(header);
	return Number.isFinite(given) && given >= 0 ? Math.min(given, MAX_RETRY_AFTER_SECONDS) : 1;
}

/** The paths whose `POST` takes an `Idempotency-Key` header, as the API's OpenAPI document says. */
type IdempotentCreate = {
	[P in keyof paths]: paths[P] extends { post: { parameters: { header?: infer H } } }
		? [NonNullable<H>] extends [never]
			? never
			: "idempotency-key" extends keyof NonNullable<H>
				? P
				: never
		: never;
}[keyof paths];

/**
 * The creates that take an `Idempotency-Key`: the client gives each call one of its own. A record
 * over the generated type, so a create that gains or loses the header fails to compile until this
 * list follows.
 */
const IDEMPOTENT: Record<IdempotentCreate, true> = {
	"/v1/jobs": true,
	"/v1/batches": true,
	"/v1/webhooks": true,
	"/v1/keys": true,
};
export const IDEMPOTENT_CREATES: ReadonlySet<string> = new Set(Object.keys(IDEMPOTENT));

/** Answers a create with an `Idempotency-Key` may be retried after: the first request still running, or a gateway's. */
const RETRYABLE_WITH_KEY = new Set([409, 502, 503, 504]);

/**
 * `fetch` that sends a request again, at most `retries` times: after the `Retry-After` of each
 * `429`; and, for a request with an `Idempotency-Key` (a create, which the API then makes once),
 * also after a network error, a `409` with `Retry-After` (its first try still running) or a 502,
 * 503 or 504, so a create whose answer was lost is not lost and not made twice.
 */
export function retrying(
	inner: typeof globalThis.fetch,
	retries: number,
	onRateLimited?: ClientOptions["onRateLimited"],
): typeof globalThis.fetch {
	return async (input, init) => {
		const request = new Request(input, init);
		if (retries <= 0) return inner(request);
		const idempotent = request.headers.has("Idempotency-Key");
		// Each attempt gets a fresh Request over the same Blob: a cloned streamed body would lose its
		// length, and uploads must declare one (411 otherwise).
		const body = request.body === null ? null : await request.blob();
		const attemptOf = () =>
			new Request(request.url, { method: request.method, headers: request.headers, body, signal: request.signal });
		for (let attempt = 0; ; attempt++) {
			const last = attempt >= retries;
			let response: Response;
			try {
				response = await inner(attemptOf());
			} catch (error) {
				// A network error: the create may or may not have been made; its key makes the retry safe.
				if (!idempotent || last || request.signal.aborted) throw error;
				await sleep(Math.min(0.5 * 2 ** attempt, 8));
				continue;
			}
			const retryable =
				response.status === 429 ||
				(idempotent &&
					RETRYABLE_WITH_KEY.has(response.status) &&
					(response.status !== 409 || response.headers.has("Retry-After")));
			if (!retryable || last) return response;
			const wait = retryAfterSeconds(response.headers.get("Retry-After"));
			await response.body?.cancel();
			if (response.status === 429) onRateLimited?.(wait, request);
			await sleep(wait);
		}
	};
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/**
 * A client for `paths` (the generated ones by default) that sends the bearer token on every call,
 * an `Idempotency-Key` of its own on every create (kept across its retries), and waits out an API
 * key's `429`s (`retries429`).
 */
export function createR2cClient<P extends {} = paths>(options: ClientOptions): Client<P> {
	const inner = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
	const fetch = retrying(inner, options.retries429 ?? 5, options.onRateLimited);
	const client = createClient<P>({ baseUrl: options.baseUrl, fetch });
	const { token } = options;
	client.use({
		onRequest({ request, schemaPath }) {
			if (token) request.headers.set("Authorization", `Bearer ${token}`);
			if (request.method === "POST" && IDEMPOTENT_CREATES.has(schemaPath) && !request.headers.has("Idempotency-Key")) {
				request.headers.set("Idempotency-Key", crypto.randomUUID());
			}
			return request;
		},
	});
	return client;
}

/** An error answer of the API: `{"error": {code, message, details}}`, or a body that is not one. */
export class ApiError extends Error {
	override readonly name = "ApiError";
	readonly status: number;
	readonly code: string;
	readonly details: unknown;
	/**
	 * For an answer without the API's error envelope, what it was instead: its media type
	 * (`text/html`), or `no body`. Such an answer comes from another server at that URL (a wrong
	 * port or path) or from a proxy in front of the API, never from the API itself. null otherwise.
	 */
	readonly foreign: string | null;
	constructor(status: number, code: string, message: string, details: unknown = null, foreign: string | null = null) {
		super(message);
		this.status = status;
		this.code = code;
		this.details = details;
		this.foreign = foreign;
	}
}

function isErrorBody(body: unknown): body is ErrorBody {
	if (typeof body !== "object" || body === null || !("error" in body)) return false;
	const { error } = body;
	return typeof error === "object" && error !== null && "code" in error && "message" in error;
}

/** What an answer held, for a message: its media type without parameters, or `no body`. */
function contentOf(response: Response, body: unknown): string {
	if (body === undefined || body === null || body === "") return "no body";
	return response.headers.get("Content-Type")?.split(";")[0]?.trim() || "no Content-Type";
}

/** The error a failed response stands for (`body` as openapi-fetch parsed it: JSON, else text). */
export function apiError(response: Response, body: unknown): ApiError {
	if (isErrorBody(body)) return new ApiError(response.status, body.error.code, body.error.message, body.error.details);
	const text = typeof body === "string" && body.length > 0 ? body.slice(0, 200) : response.statusText;
	const foreign = contentOf(response, body);
	return new ApiError(response.status, `http_${response.status}`, text || `HTTP ${response.status}`, null, foreign);
}

/** What each call of an openapi-fetch client answers. */
export type Result<D> =
	| { data: D; error?: never; response: Response }
	| { data?: never; error: unknown; response: Response };

/** The data of a successful call; throws `ApiError` for an error answer (or a missing body). */
export async function ok<D>(call: Promise<Result<D>>): Promise<NonNullable<D>> {
	const { data, error, response } = await call;
	if (error !== undefined || !response.ok) throw apiError(response, error);
	if (data === undefined || data === null) {
		throw new ApiError(response.status, `http_${response.status}`, "The API answered without a body", null, "no body");
	}
	return data;
}

export interface UploadOptions {
	/** Caption instruction or visual question (`X-Caption-Prompt`). */
	prompt?: string;
	maxTokens?: number;
	callbackUrl?: string;
	/** `X-Caption-Output`, `X-Caption-Language`, `X-Caption-Write-Back` as their header text. */
	outputHeaders?: Record<string, string>;
}

/**
 * A header value as its UTF-8 bytes, one character per byte. The API reads header bytes as UTF-8;
 * `fetch` sends a character up to U+00FF as that one byte (Latin-1: `é` would arrive as U+FFFD, a
 * 400) and refuses any above it (`’`, `✓` threw a TypeError before the request was made). The
 * dashboard's XMLHttpRequest uploads do the same.
 */
export const utf8Header = (value: string): string => String.fromCharCode(...new TextEncoder().encode(value));

/**
 * `PUT /v1/images/{key}`: the bytes go as they are (the API sniffs the type), the key as one
 * percent-encoded path segment (`photos%2Fcat.jpg`). Answers the object version's job.
 */
export function uploadImage(client: R2cClient, key: string, bytes: Blob, options: UploadOptions = {}): Promise<Job> {
	const header: NonNullable<paths["/v1/images/{key}"]["put"]["parameters"]["header"]> = {};
	if (options.prompt !== undefined) header["X-Caption-Prompt"] = utf8Header(options.prompt);
	if (options.maxTokens !== undefined) header["X-Caption-Max-Tokens"] = options.maxTokens;
	if (options.callbackUrl !== undefined) header["X-Callback-Url"] = utf8Header(options.callbackUrl);
	for (const [name, value] of Object.entries(options.outputHeaders ?? {})) {
		Object.assign(header, { [name]: utf8Header(value) });
	}
	return ok(
		client.PUT("/v1/images/{key}", {
			params: { path: { key }, header },
			body: bytes,
			bodySerializer: (body) => body,
			headers: { "Content-Type": "application/octet-stream" },
		}),
	);
}

/** Every job matching `query`, following `next_cursor` (at most `max` jobs). */
export async function listAllJobs(
	client: R2cClient,
	query: Omit<NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]>, "cursor" | "limit">,
	max = Number.POSITIVE_INFINITY,
): Promise<Job[]> {
	const jobs: Job[] = [];
	let cursor: string | undefined;
	do {
		const page = await ok(client.GET("/v1/jobs", { params: { query: { ...query, limit: 100, cursor } } }));
		jobs.push(...page.data);
		cursor = page.next_cursor ?? undefined;
	} while (cursor !== undefined && jobs.length < max);
	return jobs;
}
