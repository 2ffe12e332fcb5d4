/**
 * The model-health registry: one Durable Object (named "models") that every consumer invocation
 * asks before calling a model and tells after, so that what one batch learns (a model is gone, its
 * circuit is open) every batch knows at once, and a half-open model gets exactly one probe however
 * many invocations want it. The status Worker reads it for `GET /v1/models`.
 *
 * State per model (shared/models/health.ts) and the calls of the last hour (for the figures of
 * `GET /v1/models`) are kept in the object's SQLite storage, so a restart forgets nothing; the
 * probe in flight is in memory only (a restart costs at most one more probe).
 */
import { DurableObject } from "cloudflare:workers";
import {
	admission,
	afterCall,
	type CallOutcome,
	type HealthPolicy,
	type ModelState,
	PROBE_LEASE_MS,
	PROBE_WAIT_MS,
	UNKNOWN,
} from "./health";
import type { ModelHealthFigures } from "./model-list";

/** Whether a call may go now (`probe`: as the one call that tests a half-open model), or when to look again. */
export type Admission = { call: true; probe: boolean } | { call: false; gone: boolean; retryAt: number };

export interface CallRecord {
	outcome: CallOutcome;
	/** The call returned an answer (false when it threw, whatever the reason). */
	ok: boolean;
	latencyMs: number;
	/** The call was the probe its admission asked for. */
	probe: boolean;
}

/** One call of a batch's, for `recordMany`. */
export interface ModelCallRecord {
	model: string;
	call: CallRecord;
}

/** The model's state once a call is recorded: `callable` is false when the caller must move on. */
export interface AfterCall {
	callable: boolean;
	gone: boolean;
	retryAt: number;
}

const HOUR_MS = 3_600_000;

interface Probe {
	expires: number;
	settled: Promise<void>;
	settle: () => void;
}

interface StateRow extends Record<string, SqlStorageValue> {
	model: string;
	status: string;
	since: number | null;
	until: number;
	failures: number;
	failed_probes: number;
	last_error: string | null;
	failing_key: string | null;
}

export class ModelHealthRegistry extends DurableObject<unknown> {
	private readonly states = new Map<string, ModelState>();
	private readonly probes = new Map<string, Probe>();
	private lastPrune = 0;

	constructor(ctx: DurableObjectState, env: unknown) {
		super(ctx, env);
		ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS model_state (
			model TEXT PRIMARY KEY, status TEXT NOT NULL, since INTEGER, until INTEGER NOT NULL,
			failures INTEGER NOT NULL, failed_probes INTEGER NOT NULL, last_error TEXT, failing_key TEXT)`);
		// Objects created before failing_key existed get the column (a failure streak of one key).
		const columns = ctx.storage.sql.exec<{ name: string }>("PRAGMA table_info(model_state)").toArray();
		if (!columns.some((c) => c.name === "failing_key")) {
			ctx.storage.sql.exec("ALTER TABLE model_state ADD COLUMN failing_key TEXT");
		}
		ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS model_calls (
			model TEXT NOT NULL, at INTEGER NOT NULL, ok INTEGER NOT NULL, latency_ms INTEGER NOT NULL)`);
		ctx.storage.sql.exec("CREATE INDEX IF NOT EXISTS model_calls_by_model ON model_calls (model, at)");
		for (const row of ctx.storage.sql.exec<StateRow>("SELECT * FROM model_state")) {
			this.states.set(row.model, {
				status: row.status as ModelState["status"],
				since: row.since,
				until: row.until,
				failures: row.failures,
				failingKey: row.failing_key,
				failedProbes: row.failed_probes,
				lastError: row.last_error,
			});
		}
	}

	/** May `model` be called now? A half-open model's probe is handed to one caller; the others wait for its outcome. */
	async admit(model: string): Promise<Admission> {
		for (let waited = false; ; waited = true) {
			const state = this.state(model);
			const now = Date.now();
			const decision = admission(state, now);
			if (decision === "call") return { call: true, probe: false };
			if (decision === "skip") return { call: false, gone: state.status === "gone", retryAt: state.until };
			const probe = this.probes.get(model);
			if (!probe || probe.expires <= now) {
				this.startProbe(model, now);
				return { call: true, probe: true };
			}
			if (waited) return { call: false, gone: false, retryAt: probe.expires };
			let timer: ReturnType<typeof setTimeout> | null = null;
			const timeout = new Promise<void>((resolve) => {
				timer = setTimeout(resolve, Math.min(PROBE_WAIT_MS, probe.expires - now));
			});
			await Promise.race([probe.settled, timeout]);
			clearTimeout(timer);
		}
	}

	/** Records a call's outcome and says whether the model may still be called. */
	record(model: string, call: CallRecord, policy: HealthPolicy): AfterCall {
		return this.apply(model, call, policy, Date.now());
	}

	/**
	 * Records the calls of a queue batch in one round trip, in the order they are listed (the order
	 * they ended in), each exactly as `record` would: the answer after each call, in that order.
	 */
	recordMany(calls: ModelCallRecord[], policy: HealthPolicy): AfterCall[] {
		const now = Date.now();
		return calls.map(({ model, call }) => this.apply(model, call, policy, now));
	}

	private apply(model: string, call: CallRecord, policy: HealthPolicy, now: number): AfterCall {
		const before = this.state(model);
		const after = afterCall(before, call.outcome, call.probe, now, policy);
		if (after !== before) this.save(model, after);
		this.ctx.storage.sql.exec(
			"INSERT INTO model_calls (model, at, ok, latency_ms) VALUES (?, ?, ?, ?)",
			model,
			now,
			call.ok ? 1 : 0,
			Math.max(0, Math.round(call.latencyMs)),
		);
		if (call.probe) this.endProbe(model);
		this.prune(now);
		return { callable: admission(after, now) === "call", gone: after.status === "gone", retryAt: after.until };
	}

	/** The admitted probe will not be made (the caller gave up before calling): another caller may probe. */
	abandon(model: string): void {
		this.endProbe(model);
	}

	/** Status and last-hour figures of each model, in the order asked. */
	figures(models: string[]): ModelHealthFigures[] {
		const now = Date.now();
		const from = now - HOUR_MS;
		const sql = this.ctx.storage.sql;
		return models.map((id) => {
			const state = this.state(id);
			const counts = sql
				.exec<{ calls: number; failures: number | null; ok: number | null }>(
					"SELECT COUNT(*) AS calls, SUM(1 - ok) AS failures, SUM(ok) AS ok FROM model_calls WHERE model = ? AND at >= ?",
					id,
					from,
				)
				.one();
			const succeeded = counts.ok ?? 0;
			// Nearest-rank median of the successful calls' latency.
			const median =
				succeeded === 0
					? null
					: sql
							.exec<{ latency_ms: number }>(
								"SELECT latency_ms FROM model_calls WHERE model = ? AND at >= ? AND ok = 1 ORDER BY latency_ms LIMIT 1 OFFSET ?",
								id,
								from,
								Math.ceil(succeeded / 2) - 1,
							)
							.one().latency_ms;
			return {
				id,
				status: state.status === "unknown" ? "ok" : state.status,
				since: state.since === null ? null : new Date(state.since).toISOString(),
				calls_1h: counts.calls,
				failures_1h: counts.failures ?? 0,
				latency_ms_p50_1h: median,
			};
		});
	}

	/** Forgets every model's state and figures (tests; an operator after fixing an account). */
	reset(): void {
		this.ctx.storage.sql.exec("DELETE FROM model_state");
		this.ctx.storage.sql.exec("DELETE FROM model_calls");
		this.states.clear();
		for (const model of [...this.probes.keys()]) this.endProbe(model);
	}

	private state(model: string): ModelState {
		return this.states.get(model) ?? UNKNOWN;
	}

	private save(model: string, state: ModelState): void {
		this.states.set(model, state);
		this.ctx.storage.sql.exec(
			"INSERT OR REPLACE INTO model_state (model, status, since, until, failures, failed_probes, last_error, failing_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			model,
			state.status,
			state.since,
			state.until,
			state.failures,
			state.failedProbes,
			state.lastError,
			state.failingKey,
		);
	}

	private startProbe(model: string, now: number): void {
		let settle = () => {};
		const settled = new Promise<void>((resolve) => {
			settle = resolve;
		});
		this.probes.set(model, { expires: now + PROBE_LEASE_MS, settled, settle });
	}

	private endProbe(model: string): void {
		this.probes.get(model)?.settle();
		this.probes.delete(model);
	}

	private prune(now: number): void {
		if (now - this.lastPrune < 60_000) return;
		this.lastPrune = now;
		this.ctx.storage.sql.exec("DELETE FROM model_calls WHERE at < ?", now - HOUR_MS);
	}
}
