/**
 * A Durable Object namespace binding that hands every call on to the real object and notes it
 * (method, arguments, answer): passed through a run's env, it counts a batch's round trips to the
 * health registry or the lane scheduler without touching the project's code.
 */

export interface CountedCall {
	method: string;
	args: unknown[];
	answer: unknown;
}

export interface Counted<N> {
	/** The binding to pass in env. */
	ns: N;
	calls: CountedCall[];
	/** Calls of `method` so far. */
	count(method: string): number;
}

function countedStub(stub: object, calls: CountedCall[]): object {
	return new Proxy(stub, {
		get(target, prop) {
			const value = Reflect.get(target, prop, target);
			if (typeof value !== "function" || typeof prop !== "string") return value;
			return async (...args: unknown[]) => {
				const call: CountedCall = { method: prop, args, answer: undefined };
				calls.push(call);
				call.answer = await Reflect.apply(value, target, args);
				return call.answer;
			};
		},
	});
}

export function counted<N extends object>(ns: N): Counted<N> {
	const calls: CountedCall[] = [];
	const wrapped = new Proxy(ns, {
		get(target, prop) {
			const value: unknown = Reflect.get(target, prop, target);
			if (typeof value !== "function") return value;
			if (prop === "getByName" || prop === "get") {
				return (...args: unknown[]) => countedStub(Reflect.apply(value, target, args), calls);
			}
			return value.bind(target);
		},
	});
	return { ns: wrapped, calls, count: (method) => calls.filter((c) => c.method === method).length };
}
