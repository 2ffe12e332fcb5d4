/**
 * Request bodies without holding them. An upload is streamed into R2, which needs its length up
 * front: the declared Content-Length is required (411) and capped (413, before reading), the first
 * bytes are peeked for the type sniff, and the body goes to R2 at that length. JSON bodies are
 * capped (413) by `jsonBodyLimit` on the operations that take one.
 */
import type { Context, MiddlewareHandler } from "hono";
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
	/** The whole body, unread: the other branch of a tee, whose sniffing branch was cancelled. */
	body: ReadableStream<Uint8Array>;
}

/**
 * The first `n` bytes of a body, for sniffing its type, and the body itself. The body is teed and
 * only the head is read, from one branch; the other keeps the request body's known length, so R2
 * takes it as it is and the bytes never pass through JavaScript.
 */
export async function peek(stream: ReadableStream<Uint8Array> | null, n: number): Promise<PeekedBody> {
	if (stream === null) return { head: new Uint8Array(0), body: new ReadableStream({ start: (c) => c.close() }) };
	const [sniffed, body] = stream.tee();
	const reader = sniffed.getReader();
	const head = new Uint8Array(n);
	let filled = 0;
	while (filled < n) {
		const next = await reader.read();
		if (next.done) break;
		const part = next.value.subarray(0, n - filled);
		head.set(part, filled);
		filled += part.byteLength;
	}
	await reader.cancel();
	return { head: head.subarray(0, filled), body };
}

const unknownLength = (error: unknown) => error instanceof TypeError && error.message.includes("known length");

/**
 * Streams a body of `length` bytes into R2 without holding it; null when the body turned out
 * shorter or longer than that. An HTTP request's body has its Content-Length as a known length and
 * goes to R2 as it is. A body made in JavaScript (a service binding, a test) has none: R2 refuses
 * it before reading, and it is then held to `length` by a FixedLengthStream on its way through.
 */
export async function putStreamed(
	bucket: R2Bucket,
	key: string,
	body: ReadableStream<Uint8Array>,
	length: number,
	options: R2PutOptions,
): Promise<R2Object | null> {
	try {
		const object = await bucket.put(key, body, options);
		if (object) return object;
	} catch (error) {
		if (!unknownLength(error)) throw error;
	}
	let read = 0;
	const counted = body.pipeThrough(
		new TransformStream<Uint8Array, Uint8Array>({
			transform(chunk, controller) {
				read += chunk.byteLength;
				controller.enqueue(chunk);
			},
		}),
	);
	const fixed = new FixedLengthStream(length);
	const piped = counted.pipeTo(fixed.writable).catch(() => {});
	const [put] = await Promise.allSettled([bucket.put(key, fixed.readable, options), piped]);
	if (put.status === "fulfilled" && put.value !== null) return put.value;
	if (read !== length) return null;
	throw put.status === "rejected" ? put.reason : new Error(`R2 did not store ${key}`);
}

/**
 * 413 for a JSON body over MAX_JSON_BYTES, 400 for one that is not UTF-8: only on the operations
 * that take a JSON body (the request's `operation`, as its route declares it). The others never read
 * a body, and their documents list neither answer; uploads (`PUT /v1/images/…`) have their own limit.
 */
export const jsonBodyLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
	if (!c.get("operation")?.jsonBody) return next();
	const limit = readSettings(c.env).MAX_JSON_BYTES;
	const limited = bodyLimit({
		maxSize: limit,
		onError: () => {
			throw tooLarge(limit, "the JSON body limit");
		},
	});
	return limited(c, async () => {
		await requireUtf8Json(c);
		await next();
	});
};

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A JSON body must be UTF-8 (RFC 8259): the platform's decoding would turn other bytes into U+FFFD
 * and store them (a caption of replacement characters). Read once, within the size limit; the
 * route's JSON validator reads the same bytes from the request's cache.
 */
async function requireUtf8Json(c: Context<AppEnv>): Promise<void> {
	if (c.req.method === "GET" || c.req.method === "HEAD") return;
	if (!/^application\/([\w.+-]+\+)?json\b/i.test(c.req.header("Content-Type") ?? "")) return;
	try {
		strictUtf8.decode(await c.req.arrayBuffer());
	} catch {
		const message = "The body is not UTF-8";
		throw new ApiError(400, "invalid_request", message, [{ field: "body", in: "body", message }]);
	}
}
