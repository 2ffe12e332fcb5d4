/**
 * One HTTP attempt of a delivery and what its answer means (docs/api.md): 2xx delivered; 410 the
 * endpoint is gone (disable it); 429, 5xx, timeouts and network errors are retryable (429/503 may
 * say when, in `Retry-After`); any other answer, a redirect included, is a permanent refusal. A URL
 * that fails the SSRF check is refused without making a request.
 */
import { errorMessage } from "../../shared/log";
import { webhookHeaders } from "../../shared/webhooks/sign";
import { checkWebhookUrl, type DeployMode, refusalMessage } from "../../shared/webhooks/ssrf";

export type AttemptOutcome =
	| { kind: "delivered"; statusCode: number }
	| { kind: "retryable"; statusCode: number | null; error: string; retryAfterSeconds: number | null }
	| { kind: "rejected"; statusCode: number | null; error: string }
	| { kind: "gone"; statusCode: 410; error: string };

export interface AttemptReport {
	outcome: AttemptOutcome;
	startedAt: number;
	durationMs: number;
	/** Whether a request went out (false: refused before sending), for the endpoint's failing clock. */
	sent: boolean;
}

export interface AttemptRequest {
	url: string;
	/** The secrets to sign with: one, or during a rotation's overlap the new and the previous. */
	secrets: readonly string[];
	/** The `webhook-id`: the delivery's id, the same on every attempt. */
	id: string;
	body: string;
	timeoutMs: number;
	mode: DeployMode;
}

/** Seconds to wait from a `Retry-After` value (delta-seconds or an HTTP-date), or null if absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
	if (value === null) return null;
	const text = value.trim();
	if (/^\d+$/.test(text)) return Number(text);
	const at = Date.parse(text);
	if (Number.isNaN(at)) return null;
	return Math.max(0, Math.ceil((at - now) / 1000));
}

/** What an HTTP answer means for the delivery. */
export function classifyResponse(status: number, retryAfter: string | null, now = Date.now()): AttemptOutcome {
	if (status >= 200 && status < 300) return { kind: "delivered", statusCode: status };
	if (status === 410) return { kind: "gone", statusCode: 410, error: "The endpoint answered 410 Gone" };
	if (status === 429 || status >= 500) {
		return {
			kind: "retryable",
			statusCode: status,
			error: `The endpoint answered ${status}`,
			retryAfterSeconds: parseRetryAfter(retryAfter, now),
		};
	}
	const why = status >= 300 && status < 400 ? " (redirects are not followed)" : "";
	return { kind: "rejected", statusCode: status, error: `The endpoint answered ${status}${why}` };
}

/** Sends one signed attempt. Never throws: every failure is an outcome. */
export async function attemptDelivery(request: AttemptRequest): Promise<AttemptReport> {
	const startedAt = Date.now();
	const report = (outcome: AttemptOutcome, sent = true): AttemptReport => ({
		outcome,
		startedAt,
		durationMs: Date.now() - startedAt,
		sent,
	});
	const verdict = checkWebhookUrl(request.url, request.mode);
	if (!verdict.ok) {
		return report({ kind: "rejected", statusCode: null, error: refusalMessage(request.url, verdict.reason) }, false);
	}
	try {
		const headers = await webhookHeaders(request.secrets, request.id, request.body, startedAt);
		const response = await fetch(verdict.url, {
			method: "POST",
			headers,
			body: request.body,
			// A redirect could lead to an address the SSRF check refuses: it is an answer, not a hop.
			redirect: "manual",
			signal: AbortSignal.timeout(request.timeoutMs),
		});
		await response.body?.cancel().catch(() => {});
		return report(classifyResponse(response.status, response.headers.get("retry-after")));
	} catch (err) {
		const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
		const error = timedOut ? `No answer within ${request.timeoutMs} ms` : `Network error: ${errorMessage(err)}`;
		return report({ kind: "retryable", statusCode: null, error, retryAfterSeconds: null });
	}
}
