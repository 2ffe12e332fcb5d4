/**
 * Request validation the routes share: the `defaultHook` of every router, which turns a failed zod
 * validation of a request part into the API's 400 naming each offending field and where it was
 * (path, query, header, body); the object-key parameter; and the SSRF check of every URL that
 * will receive webhooks (subscriptions, and the per-object callback URL of uploads and jobs).
 */
import type { Hook } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { isSidecarLike, SIDECAR_NAME } from "../../shared/outputs/sidecar";
import { MAX_KEY_BYTES, utf8Length } from "../../shared/r2-limits";
import { checkWebhookUrl, type DeployMode, refusalMessage } from "../../shared/webhooks/ssrf";
import { ApiError, type FieldIssue, invalidParams, type ParamLocation } from "./api-error";
import type { AppEnv } from "./app-env";

/** A segment that is `.` or `..` once percent-decoded (`%2e%2e`, `.%2E`): a path step to some tool. */
function isDotSegment(segment: string): boolean {
	let decoded = segment;
	try {
		decoded = decodeURIComponent(segment);
	} catch {
		// Not valid percent-encoding: the segment is what it says.
	}
	return decoded === "." || decoded === "..";
}

/**
 * An object key the API accepts: 1 to 1,024 UTF-8 bytes (R2's limit), no control characters, no
 * bidirectional-text controls (they make a key read differently than it is, e.g. `cat\u202Egnp.js`),
 * no `\` (a path separator on Windows), no leading `/`, no empty segment (`a//b`), and no `.` or `..`
 * segment, plain or percent-encoded: keys that tools and file systems would read as another path
 * (a sync to disk of `a/../b` writes outside its folder).
 */
export const ObjectKey = z
	.string()
	.min(1)
	.max(MAX_KEY_BYTES)
	.refine((key) => utf8Length(key) <= MAX_KEY_BYTES, `Longer than ${MAX_KEY_BYTES} UTF-8 bytes`)
	// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
	.refine((key) => !/[\u0000-\u001f\u007f-\u009f]/.test(key), "Contains a control character")
	.refine((key) => !/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(key), "Contains a bidirectional-text control")
	.refine((key) => !key.includes("\\"), "Contains a backslash")
	.refine((key) => !key.startsWith("/"), "Starts with /")
	.refine((key) => !key.includes("//"), "Has an empty segment (//)")
	.refine((key) => !key.split("/").some(isDotSegment), "Has a . or .. segment (perhaps percent-encoded)")
	.meta({ example: "photos/cat.jpg" });

/** A key to caption: an object key that does not name a sidecar (`.txt`, `.json`, docs/outputs.md). */
export const ImageKey = ObjectKey.refine((key) => !isSidecarLike(key), SIDECAR_NAME).meta({
	example: "photos/cat.jpg",
});

/**
 * A 400 naming `key` when the request's path is not valid percent-encoding (`%C3` alone, `%ZZ`): the
 * router leaves such escapes undecoded, and the key would be stored with them as text (`%2F%C3`
 * not a slash). A literal `%` in a key is sent as `%25`.
 */
export function requireDecodableKeyPath(url: string): void {
	try {
		decodeURIComponent(new URL(url).pathname);
	} catch {
		throw invalidParams([{ field: "key", in: "path", message: NOT_PERCENT_ENCODED }]);
	}
}

const NOT_PERCENT_ENCODED = "Not valid percent-encoding: UTF-8 bytes as %XX, a literal % as %25";

/**
 * 400 naming each of the request's operation's query parameters whose value is not valid
 * percent-encoding (`?key=%C3`, `?prefix=%ZZ`), as requireDecodableKeyPath does for a path: taken as
 * its literal text, such a filter would match nothing, or the wrong objects, in silence. A parameter
 * the operation does not read is left alone.
 */
export const decodableQuery: MiddlewareHandler<AppEnv> = async (c, next) => {
	const search = new URL(c.req.url).search.slice(1);
	const read = c.get("operation")?.query;
	if (search !== "" && read !== undefined) {
		const issues: FieldIssue[] = search.split("&").flatMap((pair) => {
			const at = pair.indexOf("=");
			const name = safeDecode(at === -1 ? pair : pair.slice(0, at));
			if (name === null || !read.has(name) || at === -1 || safeDecode(pair.slice(at + 1)) !== null) return [];
			return [{ field: name, in: "query", message: NOT_PERCENT_ENCODED }];
		});
		if (issues.length > 0) throw invalidParams(issues);
	}
	await next();
};

/** A query component decoded as URLSearchParams does (`+` a space), or null when it is not valid percent-encoding. */
function safeDecode(component: string): string | null {
	try {
		return decodeURIComponent(component.replaceAll("+", " "));
	} catch {
		return null;
	}
}

/**
 * The URL as it will be called, or a 400 `unsafe_url` naming the field: production allows only
 * https to public hosts; local development (DEPLOY_MODE "local") also loopback over http.
 */
export function requireSafeWebhookUrl(mode: DeployMode, url: string, field: string, where: ParamLocation): string {
	const verdict = checkWebhookUrl(url, mode);
	if (verdict.ok) return verdict.url;
	const message = refusalMessage(url, verdict.reason);
	throw new ApiError(400, verdict.code, message, [{ field, in: where, message }]);
}

const LOCATIONS: Record<string, ParamLocation> = {
	param: "path",
	query: "query",
	header: "header",
	cookie: "header",
	json: "body",
	form: "body",
};

/** `x-caption-prompt` → `X-Caption-Prompt`: the spelling the API documents. */
const headerName = (name: string) =>
	name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());

export function fieldIssues(error: z.ZodError, location: ParamLocation): FieldIssue[] {
	return error.issues.flatMap((issue) => {
		// Unknown keys name themselves, not their parent object.
		const names = issue.code === "unrecognized_keys" ? issue.keys : [issue.path.map(String).join(".")];
		return names.map((name) => ({
			field: name === "" ? "body" : location === "header" ? headerName(name) : name,
			in: location,
			message: issue.message,
		}));
	});
}

export const validationHook: Hook<unknown, AppEnv, string, undefined> = (result) => {
	if (result.success) return;
	throw invalidParams(fieldIssues(result.error, LOCATIONS[result.target] ?? "body"));
};
