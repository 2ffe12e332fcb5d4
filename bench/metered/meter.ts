/**
 * BENCHMARK ONLY — metering of what a Worker invocation costs on Cloudflare's bill, other than the
 * model: D1 queries and the rows they read and write (from each result's `meta`, which local D1
 * reports as D1 does), queue messages sent, received and retried, R2 operations by method, and the
 * invocation itself.
 * The metered entry points beside this file wrap the real Workers' handlers with it; each
 * invocation logs one `METER {…}` line that bench/batches.ts adds up from wrangler's output.
 * Nothing here is deployed, and the Workers' own code is unchanged.
 *
 * It also breaks each invocation down by stage of a caption (claim, options, read, prepare,
 * admission, pacing, model, finish): every round trip (D1 query or batch, Durable Object call, R2
 * operation, Images call, model call, queue send) is counted and timed under the stage it belongs
 * to, told by what it is (`stageOfSql`, the binding and method), so both consumers are measured the
 * same way without marking their code. The model is the emulator, called through a stand-in `AI`
 * binding so that its calls are timed like any other round trip.
 */
import { modelBackend } from "../../shared/models/backend";
import type { Stage } from "./stages";

export interface MeterLine {
	worker: string;
	/** `fetch POST /v1/batches`, `queue caption-jobs`, `scheduled`. */
	invocation: string;
	d1Queries: number;
	rowsRead: number;
	rowsWritten: number;
	/** Messages sent, by producer binding. */
	sent: Record<string, number>;
	received: number;
	retried: number;
	/** R2 calls by method (`head`, `get`, `put`, `list`, `delete`, …), every bucket binding together. */
	r2: Record<string, number>;
	/** Wall time of the invocation. */
	ms: number;
	/** Round trips by stage and kind: how many, and the time they took (summed, ms). */
	stages: Record<string, Record<string, RoundTrips>>;
	/** D1 rows written by stage. */
	rowsWrittenByStage: Record<string, number>;
	/** D1 rows written by statement (its SQL's start, `sqlSignature`), and how many times each ran. */
	rowsWrittenBySql: Record<string, { n: number; rows: number }>;
}

export interface RoundTrips {
	n: number;
	ms: number;
}

export type RoundTripKind = "d1" | "do" | "r2" | "images" | "ai" | "queue";

type Counts = Omit<MeterLine, "worker" | "invocation" | "ms">;

/**
 * The stage a D1 statement belongs to: what reads or makes the job before the work (the claim, a
 * duplicate's lookup, a deletion) is the claim; what records the outcome (finish, release,
 * counters, events, the naive consumer's column updates) is the finish. A `batch()` belongs to the stage of its first statement.
 */
export function stageOfSql(sql: string): Stage {
	const s = sql.trim();
	if (/^INSERT INTO counters/i.test(s)) return "finish";
	if (/FROM presets/.test(s)) return "options";
	if (/SET status = 'processing'/.test(s) || /^SELECT/i.test(s) || /^INSERT INTO jobs/i.test(s)) return "claim";
	if (/deleted_objects/.test(s)) return "claim";
	return "finish";
}

function roundTrips(counts: Counts, stage: Stage, kind: RoundTripKind): RoundTrips {
	const byKind = counts.stages[stage] ?? {};
	counts.stages[stage] = byKind;
	const entry = byKind[kind] ?? { n: 0, ms: 0 };
	byKind[kind] = entry;
	return entry;
}

/** Counts and times one round trip under its stage and kind. */
async function timed<T>(counts: Counts, stage: Stage, kind: RoundTripKind, run: () => Promise<T>): Promise<T> {
	const started = performance.now();
	try {
		return await run();
	} finally {
		const entry = roundTrips(counts, stage, kind);
		entry.n++;
		entry.ms += performance.now() - started;
	}
}

/** A statement's name in the per-statement totals: the start of its SQL, on one line. */
export const sqlSignature = (sql: string) => sql.replace(/\s+/g, " ").trim().slice(0, 100);

function addMeta(counts: Counts, result: D1Result | undefined, stage: Stage, sql: string): void {
	const written = result?.meta.rows_written ?? 0;
	counts.rowsRead += result?.meta.rows_read ?? 0;
	counts.rowsWritten += written;
	counts.rowsWrittenByStage[stage] = (counts.rowsWrittenByStage[stage] ?? 0) + written;
	const signature = sqlSignature(sql);
	const entry = counts.rowsWrittenBySql[signature] ?? { n: 0, rows: 0 };
	counts.rowsWrittenBySql[signature] = { n: entry.n + 1, rows: entry.rows + written };
}

interface RawStatement {
	statement: D1PreparedStatement;
	sql: string;
	stage: Stage;
	bracket: boolean;
}

function meteredStatement(
	statement: D1PreparedStatement,
	sql: string,
	counts: Counts,
	raw: WeakMap<object, RawStatement>,
) {
	const stage = stageOfSql(sql);
	const wrapped: D1PreparedStatement = new Proxy(statement, {
		get(target, prop) {
			if (prop === "bind") {
				return (...values: unknown[]) => meteredStatement(target.bind(...values), sql, counts, raw);
			}
			if (prop === "run" || prop === "all") {
				return async () => {
					counts.d1Queries++;
					const result = await timed(counts, stage, "d1", () => target.all());
					addMeta(counts, result, stage, sql);
					return result;
				};
			}
			if (prop === "first") {
				// first() hides the result's meta: run the same query with all() (D1 runs it whole either way).
				return async (column?: string) => {
					counts.d1Queries++;
					const result = await timed(counts, stage, "d1", () => target.all<Record<string, unknown>>());
					addMeta(counts, result, stage, sql);
					const row = result.results[0] ?? null;
					return column === undefined || row === null ? row : (row[column] ?? null);
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	raw.set(wrapped, { statement, sql, stage, bracket: /stats_deferred/.test(sql) || /^\s*WITH\b/i.test(sql) });
	return wrapped;
}

function meteredDatabase(db: D1Database, counts: Counts): D1Database {
	const raw = new WeakMap<object, RawStatement>();
	return new Proxy(db, {
		get(target, prop) {
			if (prop === "prepare") return (sql: string) => meteredStatement(target.prepare(sql), sql, counts, raw);
			if (prop === "batch") {
				return async (statements: D1PreparedStatement[]) => {
					counts.d1Queries++;
					// A batch belongs to the stage of its first statement (a claim's or a finish's), the
					// bracket of counted changes and the counts (shared/jobs/batched-counts.ts) aside.
					const first = statements.find((s) => !raw.get(s)?.bracket);
					const stage = (first && raw.get(first)?.stage) ?? "finish";
					const results = await timed(counts, stage, "d1", () =>
						target.batch(statements.map((s) => raw.get(s)?.statement ?? s)),
					);
					results.forEach((result, i) => {
						addMeta(counts, result, stage, raw.get(statements[i] as object)?.sql ?? "(unmetered statement)");
					});
					return results;
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

function meteredQueue(queue: Queue, name: string, counts: Counts): Queue {
	const add = (n: number) => {
		counts.sent[name] = (counts.sent[name] ?? 0) + n;
	};
	return new Proxy(queue, {
		get(target, prop) {
			if (prop === "send") {
				return (body: unknown, options?: QueueSendOptions) => {
					add(1);
					return timed(counts, "finish", "queue", () => target.send(body, options));
				};
			}
			if (prop === "sendBatch") {
				return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
					const list = [...messages];
					add(list.length);
					return timed(counts, "finish", "queue", () => target.sendBatch(list, options));
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

/** An R2 bucket whose `head` counts as the options stage and `get`/`put`/`list` as the read. */
function meteredBucket(bucket: R2Bucket, counts: Counts): R2Bucket {
	return new Proxy(bucket, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function") return value;
			const method = String(prop);
			const stage: Stage = method === "head" ? "options" : "read";
			return (...args: unknown[]) => {
				counts.r2[method] = (counts.r2[method] ?? 0) + 1;
				return timed(counts, stage, "r2", () => Reflect.apply(value, target, args) as Promise<unknown>);
			};
		},
	});
}

const isBucket = (value: unknown): value is R2Bucket =>
	typeof value === "object" && value !== null && "head" in value && "list" in value && "put" in value;

/**
 * The stage of a Durable Object method: the health registry's questions, the lane scheduler's (and
 * the older rate limiter's) slots, the event hub's notice of a finish's events.
 */
const DO_STAGES: Record<string, Record<string, Stage>> = {
	MODEL_HEALTH: {
		admit: "admission",
		admitMany: "admission",
		abandon: "admission",
		record: "model",
		recordMany: "model",
		recordAnswered: "model",
	},
	MODEL_SCHEDULER: { acquire: "pacing", acquireMany: "pacing", slotStream: "pacing", release: "pacing" },
	EVENT_HUB: { notify: "finish" },
};

function meteredStub(stub: object, stages: Record<string, Stage>, counts: Counts): object {
	return new Proxy(stub, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			const stage = typeof prop === "string" ? stages[prop] : undefined;
			if (typeof value !== "function" || !stage) return value;
			return (...args: unknown[]) =>
				timed(counts, stage, "do", () => Reflect.apply(value, target, args) as Promise<unknown>);
		},
	});
}

function meteredNamespace(ns: DurableObjectNamespace, stages: Record<string, Stage>, counts: Counts) {
	return new Proxy(ns, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (prop === "getByName" || prop === "get") {
				return (...args: unknown[]) => meteredStub(Reflect.apply(value, target, args), stages, counts);
			}
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

/** The Images binding: every call (and what its transforms await) is the prepare stage. */
function meteredImages(images: ImagesBinding, counts: Counts): ImagesBinding {
	return new Proxy(images, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function") return value;
			return (...args: unknown[]) => {
				roundTrips(counts, "prepare", "images").n++;
				return Reflect.apply(value, target, args);
			};
		},
	});
}

/** The model emulator behind a stand-in AI binding, so each model call is timed as a round trip. */
function meteredModel(env: Record<string, unknown>, counts: Counts): Ai {
	const runner = modelBackend(env);
	const ai = {
		run: (model: string, inputs: Record<string, unknown>) =>
			timed(counts, "model", "ai", () => runner.run(model, inputs)),
	};
	return ai as unknown as Ai;
}

/** A copy of `env` whose D1 database, queue producers, buckets, Durable Objects and model count into a fresh meter. */
export function meterInvocation<E extends object>(env: E): { env: E; counts: Counts } {
	const counts: Counts = {
		d1Queries: 0,
		rowsRead: 0,
		rowsWritten: 0,
		sent: {},
		received: 0,
		retried: 0,
		r2: {},
		stages: {},
		rowsWrittenByStage: {},
		rowsWrittenBySql: {},
	};
	const source = env as Record<string, unknown>;
	const out: Record<string, unknown> = { ...source };
	for (const [name, value] of Object.entries(out)) {
		if (name === "DB") out[name] = meteredDatabase(value as D1Database, counts);
		else if (name === "IMAGES") out[name] = meteredImages(value as ImagesBinding, counts);
		else if (name in DO_STAGES) {
			out[name] = meteredNamespace(value as DurableObjectNamespace, DO_STAGES[name] ?? {}, counts);
		} else if (value && typeof value === "object" && "sendBatch" in value)
			out[name] = meteredQueue(value as Queue, name, counts);
		else if (isBucket(value)) out[name] = meteredBucket(value, counts);
	}
	if ((source.MODEL_BACKEND ?? "emulator") === "emulator") {
		out.AI = meteredModel(source, counts);
		out.MODEL_BACKEND = "workers-ai";
	}
	return { env: out as E, counts };
}

/** A copy of a message batch that counts what it receives and retries. */
export function meteredBatch<Body>(batch: MessageBatch<Body>, counts: Counts): MessageBatch<Body> {
	counts.received += batch.messages.length;
	const messages = batch.messages.map(
		(message): Message<Body> =>
			new Proxy(message, {
				get(target, prop) {
					if (prop === "retry") {
						return (options?: QueueRetryOptions) => {
							counts.retried++;
							target.retry(options);
						};
					}
					const value = Reflect.get(target, prop, target);
					return typeof value === "function" ? value.bind(target) : value;
				},
			}),
	);
	return new Proxy(batch, {
		get(target, prop) {
			if (prop === "messages") return messages;
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

export function report(worker: string, invocation: string, counts: Counts, ms: number): void {
	const line: MeterLine = { worker, invocation, ...counts, ms: Math.round(ms * 10) / 10 };
	console.log(`METER ${JSON.stringify(line)}`);
}

/** Runs one invocation of `worker` with a metered env and logs its line, whatever the outcome. */
export async function metered<E extends object, T>(
	worker: string,
	invocation: string,
	env: E,
	run: (env: E, counts: Counts) => Promise<T>,
): Promise<T> {
	const m = meterInvocation(env);
	const started = performance.now();
	try {
		return await run(m.env, m.counts);
	} finally {
		report(worker, invocation, m.counts, performance.now() - started);
	}
}
