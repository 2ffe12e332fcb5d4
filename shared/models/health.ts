/**
 * The health of one model, as a pure state machine (the registry Durable Object,
 * shared/models/health-registry.ts, keeps one per model and shares it between every consumer
 * invocation). A circuit breaker whose first state is half-open:
 *
 * - `unknown` (never called) and a cool-down that has run out are half-open: one call, the probe,
 *   goes to the model while every other caller waits for its outcome or moves on;
 * - `ok`: every call goes through; `failureThreshold` consecutive failures that are not about the
 *   input, with any code, open the circuit — unless every one of them came from the requests of one
 *   API key: the model is one tenant's trouble until a call of anyone else fails too (a tenant's own
 *   images or prompts must not take a shared model away from the others);
 * - `circuit_open`: skipped for a cool-down that doubles after each failed probe (up to the maximum);
 * - `gone` (an answer that says this account cannot use the model: 5007, 3042, 5016, 5035, …):
 *   skipped for the maximum cool-down.
 *
 * So a model that answers only errors, a retired one for instance, costs one call per cool-down
 * across all consumers, whatever code it answers — or, while one API key's requests alone are
 * failing it, one call per such request until anyone else's call fails too.
 */

export type HealthStatus = "ok" | "gone" | "circuit_open";

export interface HealthPolicy {
	/** Consecutive failures that open the circuit of a model that was working. */
	failureThreshold: number;
	/** First cool-down of an open circuit, in ms; doubles after each failed probe. */
	cooldownMs: number;
	/** Longest cool-down, in ms; also the cool-down of a gone model. */
	maxCooldownMs: number;
}

export interface ModelState {
	status: HealthStatus | "unknown";
	/** When the model entered its status (null while unknown). */
	since: number | null;
	/** End of the cool-down of a gone or open model. */
	until: number;
	/** Consecutive failures while ok; while half-open, 1 after a probe failed on one key's request. */
	failures: number;
	/** The API key whose requests made every one of those failures, or null (none yet, or not one key's). */
	failingKey: string | null;
	/** Consecutive failed probes since the circuit opened. */
	failedProbes: number;
	lastError: string | null;
}

/**
 * What a call told about the model: it answered (well, or about the request), it is gone, or it
 * failed. `key` is the API key whose request failed (null for the admin's and bucket uploads).
 */
export type CallOutcome =
	| { kind: "answered" }
	| { kind: "gone"; error: string }
	| { kind: "failed"; error: string; key?: string | null };

/** A probe not recorded within this time (its consumer died) lets another caller probe. */
export const PROBE_LEASE_MS = 60_000;
/** How long a caller waits for a probe's outcome before moving on to the next model. */
export const PROBE_WAIT_MS = 15_000;

export const UNKNOWN: ModelState = {
	status: "unknown",
	since: null,
	until: 0,
	failures: 0,
	failingKey: null,
	failedProbes: 0,
	lastError: null,
};

/** Whether a call may go now (`call`), must first be the probe (`probe`), or must skip the model. */
export function admission(state: ModelState, now: number): "call" | "probe" | "skip" {
	if (state.status === "ok") return "call";
	if (state.status === "unknown" || now >= state.until) return "probe";
	return "skip";
}

/** The state after a call's outcome. `probe` says whether the call was the half-open probe. */
export function afterCall(
	state: ModelState,
	outcome: CallOutcome,
	probe: boolean,
	now: number,
	policy: HealthPolicy,
): ModelState {
	// A late answer from a call admitted before the model was skipped says nothing new; a probe's
	// answer that comes after another caller's probe closed the circuit counts as an ordinary call.
	if (!probe && state.status !== "ok") return state;
	if (probe && state.status === "ok") return afterCall(state, outcome, false, now, policy);
	switch (outcome.kind) {
		case "answered":
			if (state.status === "ok") return { ...state, failures: 0, failingKey: null };
			return { ...UNKNOWN, status: "ok", since: now };
		case "gone":
			return {
				status: "gone",
				since: state.status === "gone" ? state.since : now,
				until: now + policy.maxCooldownMs,
				failures: 0,
				failingKey: null,
				failedProbes: 0,
				lastError: outcome.error,
			};
		case "failed": {
			const key = outcome.key ?? null;
			// A probe that failed on one tenant's request proves nothing: the next caller probes again.
			// That tenant's next ones too, but a failure of anyone else's (another key's, the admin's)
			// opens the circuit, as the streak rule below does while ok.
			const sameTenant = key !== null && (state.failures === 0 || state.failingKey === key);
			if (probe && sameTenant) return { ...state, failures: 1, failingKey: key, lastError: outcome.error };
			if (probe) {
				// The probe failed: (re)open the circuit, for longer each time.
				const failedProbes = state.status === "circuit_open" ? state.failedProbes + 1 : 0;
				return {
					status: "circuit_open",
					since: state.status === "circuit_open" ? state.since : now,
					until: now + Math.min(policy.cooldownMs * 2 ** failedProbes, policy.maxCooldownMs),
					failures: 0,
					failingKey: null,
					failedProbes,
					lastError: outcome.error,
				};
			}
			const failures = state.failures + 1;
			const fresh = state.failures === 0 && state.failingKey === null;
			const failingKey = fresh || state.failingKey === key ? key : null;
			if (failures < policy.failureThreshold) return { ...state, failures, failingKey, lastError: outcome.error };
			// One key's requests alone: held one short of the threshold, so the next failure of
			// another caller's request opens the circuit, and a success closes the streak.
			if (failingKey !== null)
				return { ...state, failures: policy.failureThreshold - 1, failingKey, lastError: outcome.error };
			return {
				status: "circuit_open",
				since: now,
				until: now + policy.cooldownMs,
				failures: 0,
				failingKey: null,
				failedProbes: 0,
				lastError: outcome.error,
			};
		}
	}
}
