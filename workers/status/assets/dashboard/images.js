// @ts-check
/**
 * Images of the bucket in the page. `<img src>` cannot send an Authorization header, so each
 * image is fetched from `GET /v1/images/{key}` with the token and shown through a blob URL.
 * Previews (`?width=`) are small WebP files made by the API; an image the API cannot preview
 * (a BMP, say) is shown from the original when that is small. Blob URLs are cached per object
 * version and width (the most recent few hundred), and at most a few downloads run at once.
 * A job that failed because its object is no image the API can read is shown no preview at all:
 * asking would only earn a 404 or a 415 (each logged by the browser as a failed resource).
 */
import { h } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */

const MAX_CACHED = 300;
const MAX_PARALLEL = 4;
const ORIGINAL_FALLBACK_BYTES = 4 * 1024 * 1024;

/**
 * The job error codes (docs/errors.md) that mean the object is gone or not an image the Images
 * binding can read, so no preview of it can be made: deleted or overwritten, empty, not an image
 * type, damaged, or over the binding's limits (an `image_too_large` that only the model refused
 * could be previewed, but the code does not tell it apart, and it is rare).
 */
const NO_IMAGE_ERRORS = new Set([
	"object_not_found",
	"empty_object",
	"unsupported_media_type",
	"invalid_image",
	"image_too_large",
]);

/** @type {Map<string, Promise<string | null>>} */
const cache = new Map();
let running = 0;
/** @type {(() => void)[]} */
const waiting = [];

/**
 * @template T
 * @param {() => Promise<T>} task
 * @returns {Promise<T>}
 */
async function limited(task) {
	if (running >= MAX_PARALLEL) await new Promise((resolve) => waiting.push(() => resolve(undefined)));
	running++;
	try {
		return await task();
	} finally {
		running--;
		waiting.shift()?.();
	}
}

/** @param {Promise<string | null>} entry */
function revoke(entry) {
	void entry.then((url) => {
		if (url) URL.revokeObjectURL(url);
	});
}

/**
 * @param {Api} api
 * @param {string} key
 * @param {number | null} width
 * @param {number | null} size
 * @returns {Promise<string | null>}
 */
async function fetchImage(api, key, width, size) {
	try {
		const query = width ? { width } : {};
		const { blob } = await api.file(
			api.client.GET("/v1/images/{key}", { params: { path: { key }, query }, parseAs: "blob" }),
		);
		return URL.createObjectURL(blob);
	} catch (err) {
		const unpreviewable = err instanceof Error && "code" in err && err.code === "unsupported_media_type";
		if (width && unpreviewable && size !== null && size <= ORIGINAL_FALLBACK_BYTES) {
			return fetchImage(api, key, null, size);
		}
		return null;
	}
}

/**
 * A blob URL for the object (or its preview), or null when it cannot be shown (deleted, not an image).
 * @param {Api} api
 * @param {{ key: string, etag: string, size: number | null }} object
 * @param {number | null} width
 */
export function imageUrl(api, object, width) {
	const id = `${object.key}\n${object.etag}\n${width ?? "original"}`;
	const hit = cache.get(id);
	if (hit) {
		// Most recently used last.
		cache.delete(id);
		cache.set(id, hit);
		return hit;
	}
	const entry = limited(() => fetchImage(api, object.key, width, object.size));
	cache.set(id, entry);
	// A failure is not cached for good: the object may appear (an upload in progress).
	void entry.then((url) => {
		if (url === null && cache.get(id) === entry) cache.delete(id);
	});
	while (cache.size > MAX_CACHED) {
		const [oldest] = cache;
		if (!oldest) break;
		cache.delete(oldest[0]);
		revoke(oldest[1]);
	}
	return entry;
}

/** Forgets every image (on sign-out: they were fetched with that token). */
export function clearImages() {
	for (const entry of cache.values()) revoke(entry);
	cache.clear();
}

/**
 * An `<img>` that fills in once its image arrives, or says there is no preview. A job's object
 * whose error says it is no readable image is not asked for.
 * @param {Api} api
 * @param {{ key: string, etag: string, size: number | null, error?: { code: string } | null }} object
 * @param {{ width: number, alt: string, className: string }} options
 */
export function authImage(api, object, options) {
	const noPreview = () => h("span", { class: "no-image" }, "no preview");
	if (object.error && NO_IMAGE_ERRORS.has(object.error.code)) {
		return h("span", { class: `image-frame ${options.className}-frame` }, noPreview());
	}
	// Bytes that came but do not decode (an unpreviewable object's original, sent in place of its
	// preview, that is damaged) would show the browser's broken-image icon.
	const img = h("img", {
		alt: options.alt,
		class: options.className,
		decoding: "async",
		onerror: () => frame.replaceChildren(noPreview()),
	});
	const frame = h("span", { class: `image-frame ${options.className}-frame` }, img);
	void imageUrl(api, object, options.width * (window.devicePixelRatio > 1 ? 2 : 1)).then((url) => {
		if (url) img.src = url;
		else frame.replaceChildren(noPreview());
	});
	return frame;
}
