/**
 * Progress of a bulk command: in a terminal, a live bar (cli-progress) under the event lines;
 * otherwise the event lines on stdout and a plain progress line on stderr every few seconds (for
 * logs and CI); with `--json`, nothing until the command prints its result.
 */
import { createRequire } from "node:module";

export interface Progress {
	/** Files or jobs that will settle in all. */
	total: number;
	/** Settled so far. */
	done: number;
	/** What the bar names, in order: `uploaded 3 | captioned 2 | failed 0`. */
	counts: Record<string, number>;
	/** The API's estimate (a batch's `eta_seconds`; null: not known yet); absent: estimated here from the rate. */
	etaSeconds?: number | null;
}

export interface Reporter {
	/** One event line (a file skipped, a caption, a failure). */
	line(text: string): void;
	update(progress: Progress): void;
	stop(): void;
}

const PLAIN_EVERY_MS = 5_000;

function rate(done: number, startedAt: number): number {
	const seconds = (Date.now() - startedAt) / 1000;
	return seconds > 0 ? done / seconds : 0;
}

function eta(p: Progress, perSecond: number): string {
	if (p.done >= p.total) return "0s";
	if (p.etaSeconds === null) return "?";
	if (p.etaSeconds === undefined && perSecond <= 0) return "?";
	const seconds = p.etaSeconds ?? Math.ceil((p.total - p.done) / perSecond);
	return seconds >= 60 ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s` : `${seconds}s`;
}

// Rate and ETA first: on a narrow terminal the end of the bar's line is what gets cut.
export const summary = (p: Progress, perSecond: number) =>
	[
		`${p.done}/${p.total}`,
		`${perSecond.toFixed(1)}/s`,
		`ETA ${eta(p, perSecond)}`,
		...Object.entries(p.counts).map(([name, n]) => `${name} ${n}`),
	].join(" | ");

function terminalReporter(startedAt: number): Reporter {
	// Loaded only here: in a pipe or a log (the tests, CI) the bar's twenty modules are never read.
	const { MultiBar, Presets } = createRequire(import.meta.url)("cli-progress") as typeof import("cli-progress");
	const bars = new MultiBar(
		{
			format: "{bar} {summary}",
			barsize: 20,
			hideCursor: true,
			// Event lines wrap as usual (raw writes); the bar line is cut to the terminal width.
			linewrap: true,
			clearOnComplete: false,
			fps: 5,
			stream: process.stdout,
		},
		Presets.shades_classic,
	);
	const bar = bars.create(1, 0, { summary: "" });
	return {
		line: (text) => bars.log(`${text}\n`),
		update: (p) => {
			bar.setTotal(Math.max(1, p.total));
			bar.update(p.done, { summary: summary(p, rate(p.done, startedAt)) });
		},
		stop: () => {
			// stop() renders the bar but not the lines logged since the last frame: flush them first.
			bars.update();
			bars.stop();
		},
	};
}

function plainReporter(startedAt: number): Reporter {
	let last = 0;
	let latest: Progress | null = null;
	const print = () => {
		if (latest) process.stderr.write(`progress: ${summary(latest, rate(latest.done, startedAt))}\n`);
		last = Date.now();
	};
	return {
		line: (text) => process.stdout.write(`${text}\n`),
		update: (p) => {
			latest = p;
			if (Date.now() - last >= PLAIN_EVERY_MS) print();
		},
		stop: print,
	};
}

const silent: Reporter = { line: () => {}, update: () => {}, stop: () => {} };

export function reporter(json: boolean): Reporter {
	const startedAt = Date.now();
	if (json) return silent;
	return process.stdout.isTTY ? terminalReporter(startedAt) : plainReporter(startedAt);
}

/** `label` padded so that event lines align: `captioned photos/cat.jpg  A cat …`. */
export const eventLine = (label: string, subject: string, detail = "") =>
	`${label.padEnd(9)} ${subject}${detail ? `  ${detail}` : ""}`;
