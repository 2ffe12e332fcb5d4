/** Helpers for the status API tests: requests through the real Worker entry, parsed answers, keys, jobs. */
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { z } from "zod";
import { Job } from "../../shared/jobs/schema";
import { ErrorBody, FieldIssue } from "../../workers/status/api-error";
import { CreatedApiKey } from "../../workers/status/auth/api-keys";
import status from "../../workers/status/index";
import { until } from "../support/poll";

export const ADMIN = env.ADMIN_TOKEN;

export interface CallOptions {
	token?: string | null;
	json?: unknown;
	body?: BodyInit;
	headers?: Record<string, string>;
	/** Bindings or vars that differ from the test environment's: the Worker is called with them. */
	env?: Partial<TestEnv>;
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
	const request = new Request(`https://status.test${path}`, { method, headers, body });
	if (!options.env) return exports.default.fetch(request);
	return Promise.resolve(status.fetch(request, { ...env, ...options.env }, createExecutionContext()));
}

/** A response's JSON parsed with the API's own schema for it: a drift fails here instead of hiding behind a cast. */
export async function parsed<T>(res: Response, schema: z.ZodType<T>): Promise<T> {
	return schema.parse(await res.json());
}

/** A page of a list endpoint: `data` and `next_cursor`. */
export const pageOf = <T>(item: z.ZodType<T>) => z.object({ data: z.array(item), next_cursor: z.string().nullable() });

/** The parts of the OpenAPI document the tests look at. */
export const OpenApiDocument = z.object({
	openapi: z.string(),
	paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

export async function errorOf(res: Response): Promise<ErrorBody["error"]> {
	return (await parsed(res, ErrorBody)).error;
}

/** The fields a 400 names (its `details`). */
export async function invalidFields(res: Response): Promise<string[]> {
	const error = await errorOf(res);
	return z
		.array(FieldIssue)
		.parse(error.details)
		.map((d) => d.field);
}

export async function createKey(prefix?: string): Promise<CreatedApiKey> {
	const res = await call("POST", "/v1/keys", { json: prefix === undefined ? {} : { prefix } });
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	return parsed(res, CreatedApiKey);
}

export async function revokeKey(id: string): Promise<void> {
	const res = await call("DELETE", `/v1/keys/${id}`);
	if (res.status !== 200) throw new Error(`revoke failed: ${res.status}`);
}

/** Uploads through the API and returns the queued job. */
export async function uploadViaApi(
	key: string,
	bytes: Uint8Array,
	headers: Record<string, string> = {},
	token?: string,
): Promise<Job> {
	const res = await call("PUT", `/v1/images/${key}`, { body: bytes, headers, ...(token ? { token } : {}) });
	if (res.status !== 202) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
	return parsed(res, Job);
}

/** Polls `GET /v1/jobs/{id}` until the job is terminal (paths through the real queue). */
export async function pollJob(id: string, timeoutMs = 15_000): Promise<Job> {
	return until(
		`job ${id} did not finish`,
		async () => {
			const job = await parsed(await call("GET", `/v1/jobs/${id}`), Job);
			return job.status === "succeeded" || job.status === "failed" ? job : undefined;
		},
		timeoutMs,
	);
}
