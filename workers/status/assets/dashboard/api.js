// @ts-check
/**
 * The dashboard's only way to the data: the public /v1 API of the page's own origin, with the
 * signed-in token in `Authorization: Bearer` (never in a URL or a cookie). Error answers become
 * `ApiError`s carrying the API's `{error: {code, message}}`; a 401 after sign-in means the token
 * was revoked, and signs the tab out. Uploads go through XMLHttpRequest for its progress events.
 */

/** @typedef {import("../../../../client/schema.ts").components["schemas"]} Schemas */
/** @typedef {Schemas["Job"]} Job */
/** @typedef {Schemas["JobList"]} JobList */
/** @typedef {Schemas["Stats"]} Stats */
/** @typedef {Schemas["StatsSeries"]} StatsSeries */
/** @typedef {Schemas["WebhookSubscription"]} WebhookSubscription */
/** @typedef {Schemas["CreatedWebhookSubscription"]} CreatedWebhookSubscription */
/** @typedef {Schemas["WebhookList"]} WebhookList */
/** @typedef {Schemas["WebhookDelivery"]} WebhookDelivery */
/** @typedef {Schemas["WebhookDeliveryList"]} WebhookDeliveryList */
/** @typedef {Schemas["JobWebhookDelivery"]} JobWebhookDelivery */
/** @typedef {Schemas["JobWebhookDeliveryList"]} JobWebhookDeliveryList */
/** @typedef {Record<string, string | number | boolean | null | undefined>} Query */

export class ApiError extends Error {
	/**
	 * @param {number} status
	 * @param {string} code
	 * @param {string} message
	 */
	constructor(status, code, message) {
		super(message);
		this.name = "ApiError";
		this.status = status;
		this.code = code;
	}
}

/**
 * The API's error envelope, or a generic error for a body that is not one.
 * @param {number} status
 * @param {string} text
 */
function errorFrom(status, text) {
	try {
		const body = JSON.parse(text);
		if (body && typeof body.error?.code === "string") return new ApiError(status, body.error.code, body.error.message);
	} catch {
		// Not JSON: fall through.
	}
	return new ApiError(status, `http_${status}`, `The API answered ${status}`);
}

/** @param {Query} [query] */
function search(query) {
	const params = new URLSearchParams();
	for (const [name, value] of Object.entries(query ?? {})) {
		if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
	}
	const s = params.toString();
	return s ? `?${s}` : "";
}

/** `photos/cat.jpg` → `/v1/images/photos%2Fcat.jpg` (the key in one path segment, as the API documents). @param {string} key */
export const imagePath = (key) => `/v1/images/${encodeURIComponent(key)}`;

/**
 * @typedef {object} UploadOptions
 * @property {string} [prompt]
 * @property {number} [maxTokens]
 * @property {(loaded: number, total: number) => void} [onProgress]
 * @property {AbortSignal} [signal]
 */

/**
 * A client for one token. `onUnauthorized` is called when the API refuses the token (401).
 * @param {string} token
 * @param {(error: ApiError) => void} [onUnauthorized]
 */
export function createApi(token, onUnauthorized) {
	const auth = `Bearer ${token}`;

	/** @param {Response} res */
	async function failure(res) {
		const error = errorFrom(res.status, await res.text());
		if (res.status === 401) onUnauthorized?.(error);
		return error;
	}

	/**
	 * @param {string} method
	 * @param {string} path
	 * @param {{ query?: Query, body?: unknown, signal?: AbortSignal }} [options]
	 * @returns {Promise<Response>}
	 */
	async function send(method, path, options = {}) {
		/** @type {Record<string, string>} */
		const headers = { Authorization: auth };
		if (options.body !== undefined) headers["Content-Type"] = "application/json";
		const res = await fetch(`${path}${search(options.query)}`, {
			method,
			headers,
			body: options.body === undefined ? null : JSON.stringify(options.body),
			signal: options.signal ?? null,
			credentials: "omit",
		});
		if (!res.ok) throw await failure(res);
		return res;
	}

	return {
		/**
		 * @param {string} path
		 * @param {Query} [query]
		 * @param {AbortSignal} [signal]
		 * @returns {Promise<unknown>}
		 */
		async get(path, query, signal) {
			return (await send("GET", path, { query, signal })).json();
		},
		/**
		 * @param {string} path
		 * @param {unknown} [body]
		 * @returns {Promise<unknown>}
		 */
		async post(path, body) {
			return (await send("POST", path, { body })).json();
		},
		/**
		 * @param {string} path
		 * @returns {Promise<unknown>}
		 */
		async delete(path) {
			return (await send("DELETE", path)).json();
		},
		/**
		 * A binary answer (an image, an export) and the file name its Content-Disposition gives.
		 * @param {string} path
		 * @param {Query} [query]
		 * @param {AbortSignal} [signal]
		 * @returns {Promise<{ blob: Blob, filename: string | null }>}
		 */
		async blob(path, query, signal) {
			const res = await send("GET", path, { query, signal });
			const disposition = res.headers.get("Content-Disposition") ?? "";
			const match = /filename\*=UTF-8''([^;]+)|filename="([^"]+)"/i.exec(disposition);
			const filename = match ? decodeURIComponent(match[1] ?? match[2] ?? "") : null;
			return { blob: await res.blob(), filename };
		},
		/**
		 * `PUT /v1/images/{key}` with upload progress; answers the object version's queued job.
		 * @param {string} key
		 * @param {Blob} file
		 * @param {UploadOptions} [options]
		 * @returns {Promise<Job>}
		 */
		upload(key, file, options = {}) {
			return new Promise((resolve, reject) => {
				const xhr = new XMLHttpRequest();
				xhr.open("PUT", imagePath(key));
				xhr.setRequestHeader("Authorization", auth);
				if (options.prompt) xhr.setRequestHeader("X-Caption-Prompt", options.prompt);
				if (options.maxTokens) xhr.setRequestHeader("X-Caption-Max-Tokens", String(options.maxTokens));
				xhr.upload.addEventListener("progress", (e) => {
					if (e.lengthComputable) options.onProgress?.(e.loaded, e.total);
				});
				xhr.addEventListener("load", () => {
					if (xhr.status === 202) {
						resolve(JSON.parse(xhr.responseText));
						return;
					}
					const error = errorFrom(xhr.status, xhr.responseText);
					if (xhr.status === 401) onUnauthorized?.(error);
					reject(error);
				});
				xhr.addEventListener("error", () =>
					reject(new ApiError(0, "network_error", "The upload did not reach the API")),
				);
				xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was stopped")));
				options.signal?.addEventListener("abort", () => xhr.abort());
				xhr.send(file);
			});
		},
	};
}

/** @typedef {ReturnType<typeof createApi>} Api */

/**
 * Saves a blob as a file through a temporary link (the page may not navigate to it otherwise).
 * @param {Blob} blob
 * @param {string} filename
 */
export function saveBlob(blob, filename) {
	const url = URL.createObjectURL(blob);
	const link = document.createElement("a");
	link.href = url;
	link.download = filename;
	document.body.appendChild(link);
	link.click();
	link.remove();
	setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** @param {unknown} err */
export const messageOf = (err) => (err instanceof Error ? err.message : String(err));
