/**
 * BENCHMARK ONLY — metering of what a Worker invocation costs on Cloudflare's bill, other than the
 * model: D1 queries and the rows they read and write (from each result's `meta`, which local D1
 * reports as D1 does), queue messages sent, received and retried, R2 operations by method, and the
 * invocation itself.
 * The metered entry points beside this file wrap the real Workers' handlers with it; each
 * invocation logs one `METER {…}` line that bench/batches.ts adds up from wrangler's output.
 * Nothing here is deployed, and the Workers' own code is unchanged.
 */

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
}

type Counts = Omit<MeterLine, "worker" | "invocation">;

function addMeta(counts: Counts, result: D1Result | undefined): void {
	counts.rowsRead += result?.meta.rows_read ?? 0;
	counts.rowsWritten += result?.meta.rows_written ?? 0;
}

function meteredStatement(statement: D1PreparedStatement, counts: Counts, raw: WeakMap<object, D1PreparedStatement>) {
	const wrapped: D1PreparedStatement = new Proxy(statement, {
		get(target, prop) {
			if (prop === "bind") {
				return (...values: unknown[]) => meteredStatement(target.bind(...values), counts, raw);
			}
			if (prop === "run" || prop === "all") {
				return async () => {
					counts.d1Queries++;
					const result = await target.all();
					addMeta(counts, result);
					return result;
				};
			}
			if (prop === "first") {
				// first() hides the result's meta: run the same query with all() (D1 runs it whole either way).
				return async (column?: string) => {
					counts.d1Queries++;
					const result = await target.all<Record<string, unknown>>();
					addMeta(counts, result);
					const row = result.results[0] ?? null;
					return column === undefined || row === null ? row : (row[column] ?? null);
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	raw.set(wrapped, statement);
	return wrapped;
}

function meteredDatabase(db: D1Database, counts: Counts): D1Database {
	const raw = new WeakMap<object, D1PreparedStatement>();
	return new Proxy(db, {
		get(target, prop) {
			if (prop === "prepare") return (sql: string) => meteredStatement(target.prepare(sql), counts, raw);
			if (prop === "batch") {
				return async (statements: D1PreparedStatement[]) => {
					counts.d1Queries++;
					const results = await target.batch(statements.map((s) => raw.get(s) ?? s));
					for (const result of results) addMeta(counts, result);
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
					return target.send(body, options);
				};
			}
			if (prop === "sendBatch") {
				return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
					const list = [...messages];
					add(list.length);
					return target.sendBatch(list, options);
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}

function meteredBucket(bucket: R2Bucket, counts: Counts): R2Bucket {
	return new Proxy(bucket, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function") return value;
			return (...args: unknown[]) => {
				const method = String(prop);
				counts.r2[method] = (counts.r2[method] ?? 0) + 1;
				return value.apply(target, args);
			};
		},
	});
}

const isBucket = (value: unknown): value is R2Bucket =>
	typeof value === "object" && value !== null && "head" in value && "list" in value && "put" in value;

/** A copy of `env` whose D1 database, queue producers and R2 buckets count into a fresh meter. */
export function meterInvocation<E extends object>(env: E): { env: E; counts: Counts } {
	const counts: Counts = { d1Queries: 0, rowsRead: 0, rowsWritten: 0, sent: {}, received: 0, retried: 0, r2: {} };
	const out: Record<string, unknown> = { ...(env as Record<string, unknown>) };
	for (const [name, value] of Object.entries(out)) {
		if (name === "DB") out[name] = meteredDatabase(value as D1Database, counts);
		else if (value && typeof value === "object" && "sendBatch" in value)
			out[name] = meteredQueue(value as Queue, name, counts);
		else if (isBucket(value)) out[name] = meteredBucket(value, counts);
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

export function report(worker: string, invocation: string, counts: Counts): void {
	const line: MeterLine = { worker, invocation, ...counts };
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
	try {
		return await run(m.env, m.counts);
	} finally {
		report(worker, invocation, m.counts);
	}
}
