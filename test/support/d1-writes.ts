/**
 * Counts the write statements a piece of code sends to D1, by handing it a D1Database whose
 * statements report their SQL before running. The database itself is the real local D1. A batch
 * (one round trip, one transaction) counts as one write, its statements joined with " + ".
 */
const WRITE = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i;

export function countingD1(db: D1Database) {
	const writes: string[] = [];
	const label = (sql: string) => sql.trim().split(/\s+/).slice(0, 3).join(" ");
	const note = (sql: string) => {
		if (WRITE.test(sql)) writes.push(label(sql));
	};
	const statements = new WeakMap<D1PreparedStatement, string>();
	const wrap = (statement: D1PreparedStatement, sql: string): D1PreparedStatement => {
		const wrapped = new Proxy(statement, {
			get(target, prop) {
				const value = Reflect.get(target, prop, target);
				if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args), sql);
				if (prop === "first" || prop === "run" || prop === "all" || prop === "raw") {
					return (...args: unknown[]) => {
						note(sql);
						return (value as (...a: unknown[]) => unknown).apply(target, args);
					};
				}
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		statements.set(wrapped, sql);
		return wrapped;
	};
	const counted = new Proxy(db, {
		get(target, prop) {
			if (prop === "prepare") {
				return (sql: string) => wrap(target.prepare(sql), sql);
			}
			if (prop === "batch") {
				return (batch: D1PreparedStatement[]) => {
					const sqls = batch.map((s) => statements.get(s) ?? "").filter((sql) => WRITE.test(sql));
					if (sqls.length > 0) writes.push(sqls.map(label).join(" + "));
					return target.batch(batch);
				};
			}
			const value = Reflect.get(target, prop, target);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { db: counted, writes };
}
