/**
 * `--output`, `--output-schema`, `--language` and `--write-back` of `r2c upload` and `r2c batch
 * create`: checked here, sent as the upload's `X-Caption-*` headers or as the body fields of
 * `POST /v1/jobs` and `POST /v1/batches`.
 */
import { readFile } from "node:fs/promises";
import type { Schemas } from "../client/index.ts";
import { CliError } from "./errors.ts";

export const TEXT_OUTPUTS = ["caption", "alt_text", "tags", "title"] as const;
export const WRITE_BACKS = ["sidecar", "metadata", "sidecar:skip", "metadata:skip"] as const;

export interface OutputFlags {
	output?: (typeof TEXT_OUTPUTS)[number];
	outputSchema?: string;
	language?: string;
	writeBack?: (typeof WRITE_BACKS)[number];
}

type Output = Schemas["Output"];

/** The options as the API takes them in a body, and the kind a finished job reports. */
export interface OutputRequest {
	output?: Output;
	language?: string;
	write_back?: { target: "sidecar" | "metadata"; mode: "overwrite" | "skip" };
	/** What `job.output` is for a job made with these options (to recognise earlier runs). */
	kind?: string;
}

export async function outputRequest(flags: OutputFlags): Promise<OutputRequest> {
	if (flags.output !== undefined && flags.outputSchema !== undefined) {
		throw new CliError("give --output or --output-schema, not both");
	}
	const request: OutputRequest = {};
	if (flags.output !== undefined) Object.assign(request, { output: flags.output, kind: flags.output });
	if (flags.outputSchema !== undefined) {
		let schema: unknown;
		try {
			schema = JSON.parse(await readFile(flags.outputSchema, "utf8"));
		} catch (err) {
			throw new CliError(`--output-schema ${flags.outputSchema}: ${err instanceof Error ? err.message : err}`);
		}
		if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
			throw new CliError(`--output-schema ${flags.outputSchema}: not a JSON Schema object`);
		}
		Object.assign(request, { output: { json_schema: schema as Record<string, unknown> }, kind: "json_schema" });
	}
	if (flags.language !== undefined) request.language = flags.language;
	if (flags.writeBack !== undefined) {
		const [target, mode] = flags.writeBack.split(":") as ["sidecar" | "metadata", "skip" | undefined];
		request.write_back = { target, mode: mode ?? "overwrite" };
	}
	return request;
}

/** The upload headers of the same options. */
export function outputHeaders(request: OutputRequest): Record<string, string> {
	const headers: Record<string, string> = {};
	if (request.output !== undefined) {
		headers["X-Caption-Output"] = typeof request.output === "string" ? request.output : JSON.stringify(request.output);
	}
	if (request.language !== undefined) headers["X-Caption-Language"] = request.language;
	if (request.write_back !== undefined) {
		headers["X-Caption-Write-Back"] = `${request.write_back.target}:${request.write_back.mode}`;
	}
	return headers;
}

/** The body fields of the same options. */
export function outputBody(request: OutputRequest): Omit<OutputRequest, "kind"> {
	const { kind: _kind, ...body } = request;
	return body;
}
