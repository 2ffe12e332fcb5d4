/**
 * Reads a request body up to a byte limit. A declared Content-Length over the limit is refused
 * before reading; otherwise bytes are counted as they stream in, so a chunked or lying client is
 * stopped at the limit instead of being buffered whole.
 */
import { ApiError } from "./api-error";

export const tooLarge = (limit: number) =>
	new ApiError(413, "payload_too_large", `The body is larger than the upload limit of ${limit} bytes`, {
		limit_bytes: limit,
	});

export async function readCappedBody(request: Request, limit: number): Promise<Uint8Array[]> {
	const declared = request.headers.get("content-length");
	if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
	if (request.body === null) return [];
	const reader = request.body.getReader();
	const chunks: Uint8Array[] = [];
	let total = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) return chunks;
		total += value.byteLength;
		if (total > limit) {
			await reader.cancel();
			throw tooLarge(limit);
		}
		chunks.push(value);
	}
}

/** The first `n` bytes across chunks, for sniffing the type without joining the whole body. */
export function headBytes(chunks: Uint8Array[], n: number): Uint8Array {
	const out = new Uint8Array(n);
	let filled = 0;
	for (const chunk of chunks) {
		if (filled >= n) break;
		const part = chunk.subarray(0, n - filled);
		out.set(part, filled);
		filled += part.byteLength;
	}
	return out.subarray(0, filled);
}
