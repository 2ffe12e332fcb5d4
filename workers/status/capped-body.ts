/**
 * Request bodies without holding them. An upload is streamed into R2, which needs its length up
 * front: the declared Content-Length is required (411) and capped (413, before reading), the first
 * bytes are peeked for the type sniff, and a FixedLengthStream holds the body to that length on its
 * way through. JSON bodies are capped (413) by `jsonBodyLimit`.
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./api-error";
import type { AppEnv } from "./app-env";
import { readSettings } from "./settings";

export const tooLarge = (limit: number, what = "the upload limit") =>
	new ApiError(413, "payload_too_large", `The body is larger than ${what} of ${limit} bytes`, {
		limit_bytes: limit,
	});

/** The upload's declared length: 411 without one, 413 over `limit`. */
export function declaredLength(request: Request, limit: number): number {
	const header = request.headers.get("content-length");
	if (header === null || !/^\d+$/.test(header.trim())) {
		throw new ApiError(
			411,
			"length_required",
			"Send the image with a Content-Length header: uploads are streamed into the bucket, which needs the size first",
		);
	}
	const length = Number(header);
	if (length > limit) throw tooLarge(limit);
	return length;
}

export interface PeekedBody {
	/** At least the first `n` bytes (fewer only if the body is shorter). */
	head: Uint8Array;
	/** The whole body again, those bytes first; the rest is read only as this is. */
	body: ReadableStream<Uint8Array>;
	/** Bytes of `body` read so far. */
	bytesRead(): number;
}

/** The first `n` bytes of a body, for sniffing its type, without reading further. */
export async function peek(stream: ReadableStream<Uint8Array> | null, n: number): Promise<PeekedBody> {
	if (stream === null) {
		return { head: new Uint8Array(0), body: new ReadableStream({ start: (c) => c.close() }), bytesRead: () => 0 };
	}
	const reader = stream.getReader();
	const chunks: Uint8Array[] = [];
	let filled = 0;
	let done = false;
	while (filled < n) {
		const next = await reader.read();
		if (next.done) {
			done = true;
			break;
		}
		chunks.push(next.value);
		filled += next.value.byteLength;
	}
	const head = new Uint8Array(filled);
	let offset = 0;
	for (const chunk of chunks) {
		head.set(chunk, offset);
		offset += chunk.byteLength;
	}
	let bytesRead = filled;
	const body = new ReadableStream<Uint8Array>({
		start(controller) {
			if (filled > 0) controller.enqueue(head);
			if (done) controller.close();
		},
		async pull(controller) {
			const next = await reader.read();
			if (next.done) return controller.close();
			bytesRead += next.value.byteLength;
			controller.enqueue(next.value);
		},
		cancel: (reason) => reader.cancel(reason),
	});
	return { head: head.subarray(0, Math.min(filled, n)), body, bytesRead: () => bytesRead };
}

/**
 * The body as a stream of exactly `length` bytes, which R2 accepts without buffering; `piped`
 * rejects when the body was shorter or longer than declared.
 */
export function fixedLength(body: ReadableStream<Uint8Array>, length: number) {
	const fixed = new FixedLengthStream(length);
	const piped = body.pipeTo(fixed.writable);
	return { stream: fixed.readable, piped };
}

/** 413 for a JSON body over MAX_JSON_BYTES; uploads (`PUT /v1/images/…`) have their own limit. */
export const jsonBodyLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
	if (c.req.method === "PUT" && c.req.path.startsWith("/v1/images/")) return next();
	const limit = readSettings(c.env).MAX_JSON_BYTES;
	const limited = bodyLimit({
		maxSize: limit,
		onError: () => {
			throw tooLarge(limit, "the JSON body limit");
		},
	});
	return limited(c, next);
};
