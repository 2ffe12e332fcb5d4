/**
 * The request-rate limiter of one API key: a Durable Object per key id, so that every isolate of
 * the status Worker takes that key's requests from one GCRA schedule (shared/gcra.ts), with no
 * waiting: a request takes a slot now or is told how long until the next one.
 */
import { SlotLimiter } from "../../shared/gcra";

export class ApiKeyRateLimiter extends SlotLimiter {}
