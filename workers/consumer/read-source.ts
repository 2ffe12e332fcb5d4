/**
 * Reading a job's object version from R2: exactly the version the job names (by etag), checked to
 * be an image worth sending to a model, with its caption options (custom metadata, checked like the
 * API checks them). Objects up to READ_WHOLE_LIMIT are read whole; of larger ones only enough of
 * the head to know the type and dimensions (a window of HEADER_BYTES at a time), and the Images
 * binding streams the rest into a downscaled copy later.
 */
import { inspectWindows, validateImage } from "../../shared/image/sniff";
import { JobFailure } from "../../shared/jobs/errors";
import {
	type CaptionOptions,
	metadataOfJob,
	type OptionDefaults,
	optionsKey,
	type PresetOptions,
	resolveOptions,
} from "../../shared/jobs/options";
import type { JobRow } from "../../shared/jobs/schema";
import type { ObjectVersion } from "../../shared/queue/caption-jobs";
import { checkWebhookUrl, type DeployMode, refusalMessage } from "../../shared/webhooks/ssrf";
import type { SourceImage } from "./prepare-image";

/** Objects up to this size are read whole; larger ones are streamed into the Images binding. */
export const READ_WHOLE_LIMIT = 4 * 1024 * 1024;
/**
 * Enough of a large file to find its dimensions, mostly; a JPEG whose metadata segments (EXIF, XMP,
 * extended XMP) run past it is read on a window of this size at a time, never whole.
 */
const HEADER_BYTES = 256 * 1024;

/** The job's object version; a JobFailure when it was deleted or replaced since. */
export async function openObject(bucket: R2Bucket, job: JobRow): Promise<R2ObjectBody> {
	const object = await bucket.get(job.key, { onlyIf: { etagMatches: job.etag } });
	if (!object) throw new JobFailure("object_not_found", `The object ${job.key} no longer exists.`);
	if (!("body" in object)) {
		throw new JobFailure("object_not_found", `The object ${job.key} was replaced by a newer version.`);
	}
	return object;
}

/**
 * The version a notification names, opened (its body not read yet); the current version's
 * metadata without a body when it was replaced since; null when the key is gone.
 */
export function openNotifiedVersion(bucket: R2Bucket, version: ObjectVersion): Promise<R2ObjectBody | R2Object | null> {
	return bucket.get(version.key, { onlyIf: { etagMatches: version.etag } });
}

/**
 * The options key (shared/jobs/options.ts) of the object version a notification names, from its
 * custom metadata (its metadata as R2 returns it, null when gone): what the notification's job is unique on besides the version. A version that is
 * gone or replaced has none (''); its job then fails with object_not_found when it opens it.
 */
export async function notifiedOptionsKey(version: ObjectVersion, head: R2Object | null): Promise<string> {
	if (!head || head.etag !== version.etag) return "";
	return optionsKey(head.customMetadata ?? {});
}

/**
 * The job's options: explicit, then the object's custom metadata, then the preset of its key, then the defaults. An invalid
 * value, or a `callback-url` the API would refuse (an object written straight into the bucket with
 * a private or non-https address), fails the job with invalid_options.
 */
export async function objectOptions(
	job: JobRow,
	object: R2Object,
	defaults: OptionDefaults,
	mode: DeployMode,
	preset: PresetOptions | null = null,
): Promise<CaptionOptions> {
	const metadata = await metadataOfJob(job, object.customMetadata ?? {});
	const options = resolveOptions(job, metadata, defaults, preset);
	if (options.callbackUrl !== null) {
		const verdict = checkWebhookUrl(options.callbackUrl, mode);
		if (!verdict.ok) {
			throw new JobFailure(
				"invalid_options",
				`Invalid callback-url: ${refusalMessage(options.callbackUrl, verdict.reason)}`,
			);
		}
	}
	return options;
}

/** An object version opened for a job, with the read of its body already started (readAhead) or not. */
export interface OpenedObject {
	body: R2ObjectBody;
	ahead: Promise<Uint8Array> | null;
}

/** Whether readSource reads this object whole (otherwise its head only, or nothing). */
const readWhole = (object: R2Object, maxBytes: number) =>
	object.size > 0 && object.size <= Math.min(READ_WHOLE_LIMIT, maxBytes);

/**
 * Starts reading an object that readSource would read whole, at once: the consumer opens a
 * notification's version before its claim, and the read then overlaps the wait for the batch's
 * claims to be written instead of following it. Null for an object read in part or not at all. A
 * claim not made leaves the read to end on its own (the object is small); readSource takes its bytes.
 */
export function readAhead(object: R2ObjectBody, maxBytes: number): Promise<Uint8Array> | null {
	if (!readWhole(object, maxBytes)) return null;
	const bytes = new Response(object.body).arrayBuffer().then((buffer) => new Uint8Array(buffer));
	// Handled where it is awaited (readSource); a claim not made never awaits it.
	bytes.catch(() => {});
	return bytes;
}

/**
 * The image in an opened object: a JobFailure when it is empty, over `maxBytes` or not a supported
 * image. Reads the body (whole, or its head), or takes the bytes readAhead read; the caller discards
 * what is left of it.
 */
export async function readSource(
	bucket: R2Bucket,
	job: JobRow,
	object: R2ObjectBody,
	maxBytes: number,
	ahead: Promise<Uint8Array> | null = null,
): Promise<SourceImage> {
	if (object.size === 0) throw new JobFailure("empty_object", "The object is empty.");
	if (object.size > maxBytes) {
		throw new JobFailure("image_too_large", `The object is ${object.size} bytes; the limit is ${maxBytes}.`);
	}
	const open = async () => {
		const again = await bucket.get(job.key, { onlyIf: { etagMatches: job.etag } });
		if (!again || !("body" in again)) throw new JobFailure("object_not_found", `The object ${job.key} is gone.`);
		return again.body;
	};
	// The claim counted this attempt: more than one means an earlier delivery of the job ran.
	const retried = job.attempts > 1;
	if (readWhole(object, maxBytes)) {
		const bytes = (await ahead) ?? new Uint8Array(await new Response(object.body).arrayBuffer());
		return { info: validateImage(bytes), bytes, open, size: object.size, retried };
	}
	const windows = windowReader(object.body, HEADER_BYTES);
	try {
		const info = await inspectWindows(windows.read);
		return { info, bytes: null, open, size: object.size, retried };
	} finally {
		await windows.close();
	}
}

/** Lets go of whatever of the object's body was not read. */
export async function discardBody(object: R2ObjectBody): Promise<void> {
	if (!object.body.locked) await object.body.cancel().catch(() => {});
}

/**
 * Reads a stream forward in windows of up to `size` bytes: `read(offset)` gives the stream's bytes
 * from `offset` (fewer at its end), at or after where the previous window started; what lies between
 * windows is read and dropped. Holds one window and the stream's current chunk at most.
 */
function windowReader(stream: ReadableStream<Uint8Array>, size: number) {
	const reader = stream.getReader();
	let last: { at: number; bytes: Uint8Array } = { at: 0, bytes: new Uint8Array() };
	// The unread part of the stream's current chunk, and where in the stream it starts.
	let chunk: Uint8Array = new Uint8Array();
	let chunkAt = 0;
	const read = async (offset: number): Promise<Uint8Array> => {
		const out = new Uint8Array(size);
		let filled = 0;
		if (offset < last.at + last.bytes.length) {
			const kept = last.bytes.subarray(offset - last.at, offset - last.at + size);
			out.set(kept);
			filled = kept.length;
		}
		while (filled < size) {
			if (chunk.length === 0) {
				const { done, value } = await reader.read();
				if (done) break;
				chunk = value;
			}
			const want = offset + filled;
			const skip = Math.min(chunk.length, Math.max(0, want - chunkAt));
			const take = Math.min(chunk.length - skip, size - filled);
			out.set(chunk.subarray(skip, skip + take), filled);
			filled += take;
			chunkAt += skip + take;
			chunk = chunk.subarray(skip + take);
		}
		last = { at: offset, bytes: out.subarray(0, filled) };
		return last.bytes;
	};
	return { read, close: () => reader.cancel().catch(() => {}) };
}
