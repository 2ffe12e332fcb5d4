/** Helpers for the status API tests: requests through the real Worker entry, keys, job rows. */
import { env, exports } from "cloudflare:workers";
import type { Job } from "../../shared/jobs/schema";
import type { CreatedApiKey } from "../../workers/status/auth/api-keys";
import { until } from "../support/poll";

export const ADMIN = env.ADMIN_TOKEN;

export interface CallOptions {
	token?: string | null;
	json?: unknown;
	body?: BodyInit;
	headers?: Record<string, string>;
}

/** A request to the status Worker as a client would make it (through the test harness's fetch). */
export function call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
	const headers = new Headers(options.headers);
	const token = options.token === undefined ? ADMIN : options.token;
	if (token !== null) headers.set("authorization", `Bearer ${token}`);
	let body = options.body;
	if (options.json !== undefined) {
		headers.set("content-type", "application/json");
		body = JSON.stringify(options.json);
	}
	return exports.default.fetch(new Request(`https://status.test${path}`, { method, headers, body }));
}

export interface ErrorJson {
	error: { code: string; message: string; details: unknown };
}

export async function errorOf(res: Response): Promise<ErrorJson["error"]> {
	const body = (await res.json()) as ErrorJson;
	return body.error;
}

/** The fields a 400 names (its `details`). */
export async function invalidFields(res: Response): Promise<string[]> {
	const error = await errorOf(res);
	return (error.details as { field: string }[]).map((d) => d.field);
}

export async function createKey(prefix?: string): Promise<CreatedApiKey> {
	const res = await call("POST", "/v1/keys", { json: prefix === undefined ? {} : { prefix } });
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	return (await res.json()) as CreatedApiKey;
}

export async function revokeKey(id: string): Promise<void> {
	const res = await call("DELETE", `/v1/keys/${id}`);
	if (res.status !== 200) throw new Error(`revoke failed: ${res.status}`);
}

/** Uploads through the API and returns the queued job. */
export async function uploadViaApi(key: string, bytes: Uint8Array, headers: Record<string, string> = {}): Promise<Job> {
	const res = await call("PUT", `/v1/images/${key}`, { body: bytes, headers });
	if (res.status !== 202) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
	return (await res.json()) as Job;
}

/** Polls `GET /v1/jobs/{id}` until the job is terminal (paths through the real queue). */
export async function pollJob(id: string, timeoutMs = 15_000): Promise<Job> {
	return until(
		`job ${id} did not finish`,
		async () => {
			const job = (await (await call("GET", `/v1/jobs/${id}`)).json()) as Job;
			return job.status === "succeeded" || job.status === "failed" ? job : undefined;
		},
		timeoutMs,
	);
}

/** Inserts a finished-or-queued job row directly (for listing and stats figures). */
export async function insertJobRow(row: {
	id: string;
	key: string;
	createdAt: number;
	status?: "queued" | "processing" | "succeeded" | "failed";
	inferenceMs?: number | null;
	completedAt?: number | null;
}): Promise<void> {
	await env.DB.prepare(
		`INSERT INTO jobs (id, source, bucket, key, etag, status, attempts, created_at, updated_at, completed_at, inference_ms)
		VALUES (?, 'api', 'images', ?, 'etag', ?, 0, ?, ?, ?, ?)`,
	)
		.bind(
			row.id,
			row.key,
			row.status ?? "queued",
			row.createdAt,
			row.createdAt,
			row.completedAt ?? null,
			row.inferenceMs ?? null,
		)
		.run();
}
