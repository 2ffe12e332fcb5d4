/**
 * The status Worker's Hono environment: its bindings and who is calling. Every route module
 * (jobs, images, keys, webhooks) is typed with `AppEnv` and reads the caller with
 * `c.get("principal")`, set by the auth middleware (auth/authenticate.ts) before any /v1/* handler
 * runs; what the caller may see is decided in auth/authorisation.ts.
 */
import type { Principal } from "./auth/authorisation";

/** What the route a /v1 request goes to declares (app.ts reads it from the routes' registry). */
export interface DeclaredOperation {
	/** It takes a JSON request body. */
	jsonBody: boolean;
	/** Its query parameters. */
	query: ReadonlySet<string>;
}

export type AppEnv = {
	Bindings: StatusEnv;
	/** `operation`: set for every /v1 request, before the body and query checks (undefined: no route). */
	Variables: { principal: Principal; operation: DeclaredOperation | undefined };
};
