/**
 * The batches API of issue 11 (`/v1/batches`), which the status API does not serve yet: its
 * paths in the shape openapi-typescript generates, written from the contract so that the
 * `batch` and `export` commands are typed today. Once the status API has these routes, delete this
 * file, regenerate the client (`npm run client:generate`) and use its `paths` instead.
 */
import type { ErrorBody } from "../client/index.ts";

export type BatchStatus = "listing" | "running" | "completed" | "cancelled";
export type ExportFormat = "jsonl" | "csv" | "hf";

export interface Batch {
	id: string;
	status: BatchStatus;
	prefix: string | null;
	key_count: number | null;
	prompt: string | null;
	max_tokens: number | null;
	metadata: Record<string, string>;
	counts: {
		total: number;
		queued: number;
		processing: number;
		succeeded: number;
		failed: number;
		cancelled: number;
		skipped: number;
	};
	created_at: string;
	listed_at: string | null;
	completed_at: string | null;
}

export interface CreateBatch {
	prefix?: string;
	keys?: string[];
	prompt?: string;
	max_tokens?: number;
	callback_url?: string;
	metadata?: Record<string, string>;
	skip_captioned?: boolean;
}

interface BatchList {
	data: Batch[];
	next_cursor: string | null;
}

type NoParams = { query?: never; header?: never; path?: never; cookie?: never };
type IdParams = { query?: never; header?: never; path: { id: string }; cookie?: never };
type Reply<T> = { headers: { [name: string]: unknown }; content: { "application/json": T } };
type Errors = { 400: Reply<ErrorBody>; 401: Reply<ErrorBody>; 404: Reply<ErrorBody> };

export interface BatchPaths {
	"/v1/batches": {
		parameters: NoParams;
		get: {
			parameters: {
				query?: { status?: BatchStatus; limit?: number; cursor?: string };
				header?: never;
				path?: never;
				cookie?: never;
			};
			requestBody?: never;
			responses: { 200: Reply<BatchList> } & Errors;
		};
		post: {
			parameters: NoParams;
			requestBody: { content: { "application/json": CreateBatch } };
			responses: { 202: Reply<Batch> } & Errors;
		};
	};
	"/v1/batches/{id}": {
		parameters: NoParams;
		get: { parameters: IdParams; requestBody?: never; responses: { 200: Reply<Batch> } & Errors };
	};
	"/v1/batches/{id}/cancel": {
		parameters: NoParams;
		post: { parameters: IdParams; requestBody?: never; responses: { 200: Reply<Batch> } & Errors };
	};
	"/v1/batches/{id}/results": {
		parameters: NoParams;
		get: {
			parameters: { query: { format: ExportFormat }; header?: never; path: { id: string }; cookie?: never };
			requestBody?: never;
			responses: {
				200: {
					headers: { [name: string]: unknown };
					content: { "application/x-ndjson": string; "text/csv": string };
				};
			} & Errors;
		};
	};
}
