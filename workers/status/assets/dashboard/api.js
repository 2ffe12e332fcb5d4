// @ts-check
/**
 * The dashboard's only way to the data: the typed client of client/ (the module `r2c` uses, bundled
 * as client.js), on the public /v1 API of the page's own origin, with the signed-in token in
 * `Authorization: Bearer` (never in a URL or a cookie). As in the terminal, an API key's `429` is
 * waited out after its `Retry-After`, and error answers become `ApiError`s carrying the API's
 * `{error: {code, message}}`; a 401 after sign-in means the token was revoked, and signs the tab
 * out. Uploads go through XMLHttpRequest for its progress events, with the same 429 handling.
 */
import { ApiError, apiError, createR2cClient, ok, retryAfterSeconds, utf8Header } from "./client.js";

export { ApiError };

/** @typedef {import("./client.js").Schemas} Schemas */
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

/** Times an upload refused with `429` is sent again, as the client does for every other call. */
const UPLOAD_RETRIES_429 = 5;

/**
 * @typedef {object} UploadOptions
 * @property {string} [prompt]
 * @property {number} [maxTokens]
 * @property {Record<string, string>} [headers] the output choices (`X-Caption-Output`, …)
 * @property {(loaded: number, total: number) => void} [onProgress]
 * @property {AbortSignal} [signal]
 */

/**
 * A client for one token. `onUnauthorized` is called when the API refuses the token (401).
 * @param {string} token
 * @param {(error: ApiError) => void} [onUnauthorized]
 */
export function createApi(token, onUnauthorized) {
	const client = createR2cClient({
		baseUrl: location.origin,
		token,
		fetch: (input, init) => fetch(input, { ...init, credentials: "omit" }),
	});

	/** @param {unknown} err */
	function refused(err) {
		if (err instanceof ApiError && err.status === 401) onUnauthorized?.(err);
		return err;
	}

	/**
	 * The data of a call of `client`; an error answer is thrown as an `ApiError`.
	 * @template D
	 * @param {Promise<import("./client.js").Result<D>>} call
	 * @returns {Promise<NonNullable<D>>}
	 */
	async function data(call) {
		try {
			return await ok(call);
		} catch (err) {
			throw refused(err);
		}
	}

	/**
	 * A binary answer (an image, an export: a call made with `parseAs: "blob"`) and the file name its
	 * Content-Disposition gives.
	 * @param {Promise<import("./client.js").Result<Blob>>} call
	 * @returns {Promise<{ blob: Blob, filename: string | null }>}
	 */
	async function file(call) {
		const result = await call;
		const blob = await data(Promise.resolve(result));
		const disposition = result.response.headers.get("Content-Disposition") ?? "";
		const match = /filename\*=UTF-8''([^;]+)|filename="([^"]+)"/i.exec(disposition);
		const filename = match ? decodeURIComponent(match[1] ?? match[2] ?? "") : null;
		return { blob, filename };
	}

	/**
	 * One `PUT /v1/images/{key}` with upload progress: the status and body of the answer.
	 * @param {string} key
	 * @param {Blob} body
	 * @param {UploadOptions} options
	 * @returns {Promise<{ status: number, retryAfter: string | null, text: string }>}
	 */
	function put(key, body, options) {
		return new Promise((resolve, reject) => {
			const xhr = new XMLHttpRequest();
			xhr.open("PUT", `/v1/images/${encodeURIComponent(key)}`);
			xhr.setRequestHeader("Authorization", `Bearer ${token}`);
			// As UTF-8 bytes (see utf8Header): XMLHttpRequest sends é as Latin-1 and refuses ’ or ✓.
			if (options.prompt) xhr.setRequestHeader("X-Caption-Prompt", utf8Header(options.prompt));
			if (options.maxTokens) xhr.setRequestHeader("X-Caption-Max-Tokens", String(options.maxTokens));
			for (const [name, value] of Object.entries(options.headers ?? {})) xhr.setRequestHeader(name, utf8Header(value));
			xhr.upload.addEventListener("progress", (e) => {
				if (e.lengthComputable) options.onProgress?.(e.loaded, e.total);
			});
			xhr.addEventListener("load", () =>
				resolve({ status: xhr.status, retryAfter: xhr.getResponseHeader("Retry-After"), text: xhr.responseText }),
			);
			xhr.addEventListener("error", () => reject(new ApiError(0, "network_error", "The upload did not reach the API")));
			xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was stopped")));
			options.signal?.addEventListener("abort", () => xhr.abort());
			xhr.send(body);
		});
	}

	return {
		/** The typed client: `api.data(api.client.GET("/v1/jobs/{id}", { params: { path: { id } } }))`. */
		client,
		data,
		file,
		/**
		 * `PUT /v1/images/{key}` with upload progress; answers the object version's queued job.
		 * @param {string} key
		 * @param {Blob} body
		 * @param {UploadOptions} [options]
		 * @returns {Promise<Job>}
		 */
		async upload(key, body, options = {}) {
			for (let attempt = 0; ; attempt++) {
				const answer = await put(key, body, options);
				if (answer.status === 429 && attempt < UPLOAD_RETRIES_429) {
					await new Promise((resolve) => setTimeout(resolve, retryAfterSeconds(answer.retryAfter) * 1000));
					continue;
				}
				/** @type {unknown} */
				let parsed = answer.text;
				try {
					parsed = JSON.parse(answer.text);
				} catch {
					// Not JSON: apiError keeps the text.
				}
				if (answer.status === 202) return /** @type {Job} */ (parsed);
				throw refused(apiError(new Response(null, { status: answer.status }), parsed));
			}
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
