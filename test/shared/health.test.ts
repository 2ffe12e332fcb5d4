/** The model-health state machine on its own (shared/models/health.ts), clock in hand. */
import { describe, expect, it } from "vitest";
import {
	admission,
	afterCall,
	type CallOutcome,
	type HealthPolicy,
	type ModelState,
	UNKNOWN,
} from "../../shared/models/health";

const POLICY: HealthPolicy = { failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 5000 };
const failed: CallOutcome = { kind: "failed", error: "5999: an answer no document lists" };
const answered: CallOutcome = { kind: "answered" };

describe("model health", () => {
	it("a model never called is probed first; a failed probe opens its circuit for the cool-down", () => {
		expect(admission(UNKNOWN, 0)).toBe("probe");
		const open = afterCall(UNKNOWN, failed, true, 100, POLICY);
		expect(open).toMatchObject({ status: "circuit_open", since: 100, until: 1100, lastError: failed.error });
		expect(admission(open, 1099)).toBe("skip");
		expect(admission(open, 1100)).toBe("probe");
	});

	it("each failed probe doubles the cool-down, up to the maximum, and keeps the time the circuit opened", () => {
		let state: ModelState = afterCall(UNKNOWN, failed, true, 0, POLICY);
		const cooldowns: number[] = [];
		for (let now = state.until; cooldowns.length < 5; now = state.until) {
			state = afterCall(state, failed, true, now, POLICY);
			cooldowns.push(state.until - now);
		}
		expect(cooldowns).toEqual([2000, 4000, 5000, 5000, 5000]);
		expect(state.since).toBe(0);
	});

	it("a successful probe closes the circuit; then every call goes through", () => {
		const open = afterCall(UNKNOWN, failed, true, 0, POLICY);
		const ok = afterCall(open, answered, true, 1500, POLICY);
		expect(ok).toMatchObject({ status: "ok", since: 1500, failures: 0 });
		expect(admission(ok, 1501)).toBe("call");
	});

	it("a working model opens after failureThreshold consecutive failures; an answer in between resets the count", () => {
		let state = afterCall(UNKNOWN, answered, true, 0, POLICY);
		state = afterCall(state, failed, false, 1, POLICY);
		state = afterCall(state, failed, false, 2, POLICY);
		state = afterCall(state, answered, false, 3, POLICY);
		state = afterCall(state, failed, false, 4, POLICY);
		state = afterCall(state, failed, false, 5, POLICY);
		expect(state).toMatchObject({ status: "ok", failures: 2 });
		state = afterCall(state, failed, false, 6, POLICY);
		expect(state).toMatchObject({ status: "circuit_open", since: 6, until: 1006 });
	});

	it("a gone answer skips the model for the maximum cool-down, from any state", () => {
		const gone = afterCall(UNKNOWN, { kind: "gone", error: "5016: licence" }, true, 10, POLICY);
		expect(gone).toMatchObject({ status: "gone", since: 10, until: 5010 });
		const ok = afterCall(UNKNOWN, answered, true, 0, POLICY);
		expect(afterCall(ok, { kind: "gone", error: "5007" }, false, 20, POLICY)).toMatchObject({
			status: "gone",
			until: 5020,
		});
	});

	it("a late answer from a call admitted before the circuit opened changes nothing", () => {
		const open = afterCall(UNKNOWN, failed, true, 0, POLICY);
		expect(afterCall(open, answered, false, 10, POLICY)).toBe(open);
		expect(afterCall(open, failed, false, 10, POLICY)).toBe(open);
	});

	describe("failures of one API key's requests alone do not take the model away from the others", () => {
		const byKey = (key: string | null): CallOutcome => ({ ...failed, key });
		const working = () => afterCall(UNKNOWN, answered, true, 0, POLICY);

		it("any number of one key's failures in a row leave the model callable", () => {
			let state = working();
			for (let now = 1; now <= 10; now++) state = afterCall(state, byKey("key_a"), false, now, POLICY);
			expect(state).toMatchObject({ status: "ok", failures: 2, failingKey: "key_a" });
			expect(admission(state, 11)).toBe("call");
		});

		it("then one failure of another key's request, or of the admin's, opens the circuit", () => {
			let state = working();
			for (let now = 1; now <= 5; now++) state = afterCall(state, byKey("key_a"), false, now, POLICY);
			expect(afterCall(state, byKey("key_b"), false, 6, POLICY)).toMatchObject({ status: "circuit_open", until: 1006 });
			expect(afterCall(state, byKey(null), false, 6, POLICY)).toMatchObject({ status: "circuit_open" });
		});

		it("an answer to anyone ends the key's streak", () => {
			let state = working();
			for (let now = 1; now <= 5; now++) state = afterCall(state, byKey("key_a"), false, now, POLICY);
			state = afterCall(state, answered, false, 6, POLICY);
			expect(state).toMatchObject({ status: "ok", failures: 0, failingKey: null });
		});

		it("a streak that mixes keys counts as today: the threshold opens it", () => {
			let state = working();
			state = afterCall(state, byKey("key_a"), false, 1, POLICY);
			state = afterCall(state, byKey("key_b"), false, 2, POLICY);
			state = afterCall(state, byKey("key_a"), false, 3, POLICY);
			expect(state).toMatchObject({ status: "circuit_open" });
		});

		it("a probe that failed on one key's request leaves the model to be probed again; the admin's opens it", () => {
			expect(afterCall(UNKNOWN, byKey("key_a"), true, 0, POLICY)).toMatchObject({
				status: "unknown",
				failingKey: "key_a",
			});
			expect(admission(afterCall(UNKNOWN, byKey("key_a"), true, 0, POLICY), 1)).toBe("probe");
			expect(afterCall(UNKNOWN, byKey(null), true, 0, POLICY)).toMatchObject({ status: "circuit_open" });
		});

		it("that key's probes may go on failing, but then another key's failed probe opens the circuit", () => {
			let state = UNKNOWN;
			for (let now = 0; now < 5; now++) state = afterCall(state, byKey("key_a"), true, now, POLICY);
			expect(admission(state, 5)).toBe("probe");
			expect(afterCall(state, byKey("key_b"), true, 5, POLICY)).toMatchObject({ status: "circuit_open", until: 1005 });
			expect(afterCall(state, byKey(null), true, 5, POLICY)).toMatchObject({ status: "circuit_open" });
			// And after a cool-down: one key's failed probe keeps it half-open, a second key's doubles it.
			const open = afterCall(UNKNOWN, failed, true, 0, POLICY);
			const keyed = afterCall(open, byKey("key_a"), true, 1000, POLICY);
			expect(admission(keyed, 1001)).toBe("probe");
			expect(afterCall(keyed, byKey("key_b"), true, 1001, POLICY)).toMatchObject({
				status: "circuit_open",
				until: 3001,
				failedProbes: 1,
			});
		});

		it("a probe's failure that comes after another probe closed the circuit counts as one failure, not a probe's", () => {
			// Another caller's probe worked, then another key's call failed once.
			let state = afterCall(UNKNOWN, answered, true, 0, POLICY);
			state = afterCall(state, byKey("key_b"), false, 1, POLICY);
			// The first probe's late failure (its lease had run out): one more failure of the streak.
			expect(afterCall(state, byKey("key_a"), true, 2, POLICY)).toMatchObject({ status: "ok", failures: 2 });
		});

		it("a probe answered after one key's failed probe closes the circuit and forgets that key", () => {
			const keyed = afterCall(UNKNOWN, byKey("key_a"), true, 0, POLICY);
			expect(afterCall(keyed, answered, true, 1, POLICY)).toMatchObject({
				status: "ok",
				failures: 0,
				failingKey: null,
			});
		});

		it("with a threshold of one, a second key's failure still opens it", () => {
			const one = { ...POLICY, failureThreshold: 1 };
			let state = afterCall(UNKNOWN, answered, true, 0, one);
			state = afterCall(state, byKey("key_a"), false, 1, one);
			state = afterCall(state, byKey("key_a"), false, 2, one);
			expect(state.status).toBe("ok");
			expect(afterCall(state, byKey("key_b"), false, 3, one).status).toBe("circuit_open");
		});
	});
});
