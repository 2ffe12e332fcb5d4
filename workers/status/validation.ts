/**
 * Turns a failed zod validation of a request part into the API's 400, naming each offending field
 * and where it was (path, query, header, body). Used as the `defaultHook` of every router.
 */
import type { Hook } from "@hono/zod-openapi";
import type { ZodError } from "zod";
import { type FieldIssue, invalidParams, type ParamLocation } from "./api-error";
import type { AppEnv } from "./app-env";

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

export function fieldIssues(error: ZodError, location: ParamLocation): FieldIssue[] {
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
