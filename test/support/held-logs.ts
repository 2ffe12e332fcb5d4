/**
 * The Workers' log lines, held in memory while a test runs and printed only when it fails.
 *
 * vitest's own console capture is off for the workerd files (`disableConsoleIntercept`): it
 * sends every line to vitest over an RPC, and a line logged from another I/O context (a queue
 * consumer, a `waitUntil`) while a file makes its last round trip is parked until a message that
 * never comes, so vitest waits for ever after the last file. Holding lines in an array does no I/O
 * at all, whichever context logs, and keeps the output of a passing run free of the thousands of
 * JSON lines the Workers write.
 */
import { beforeEach, onTestFailed } from "vitest";

const LEVELS = ["debug", "info", "log", "warn", "error"] as const;

const text = (value: unknown): string => {
	if (typeof value === "string") return value;
	if (value instanceof Error) return value.stack ?? value.message;
	try {
		return JSON.stringify(value) ?? String(value);
	} catch {
		return String(value);
	}
};

/** Replaces the console's writers with ones that hold lines, and prints them if the test fails. */
export function holdLogsUntilFailure(): void {
	// Files that share a runtime run this again: the first file's writer is the real one.
	const original = globalThis as { __realConsoleError?: typeof console.error };
	original.__realConsoleError ??= console.error.bind(console);
	const write = original.__realConsoleError;
	const held: string[] = [];
	for (const level of LEVELS) {
		console[level] = (...args: unknown[]) => {
			held.push(`[${level}] ${args.map(text).join(" ")}`);
		};
	}
	beforeEach(() => {
		// What the Workers logged between tests (work a finished test left running) is nobody's.
		held.length = 0;
		onTestFailed(() => {
			if (held.length > 0) write(`--- the Workers' log during this test ---\n${held.join("\n")}`);
		});
	});
}
