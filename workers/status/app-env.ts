/**
 * The status Worker's Hono environment: its bindings and who is calling. Every route module
 * (jobs, images, keys, webhooks) is typed with `AppEnv` and reads the caller with
 * `c.get("principal")`, set by the auth middleware (auth/authenticate.ts) before any /v1/* handler
 * runs; what the caller may see is decided in auth/authorisation.ts.
 */
import type { Principal } from "./auth/authorisation";

export type AppEnv = { Bindings: StatusEnv; Variables: { principal: Principal } };
