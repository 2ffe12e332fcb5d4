/**
 * The events scenario of `npm run bench` (`--only events`): GET /v1/events on the local stack.
 *
 * - idle: 1, then 100 streams open for IDLE_SECONDS with nothing happening: the event hub's D1
 *   reads and notifications (from its `event_hub_stats` log lines, one per heartbeat) and workerd's
 *   CPU per minute, and what that makes per open stream per hour;
 * - busy: N images captioned with 1, then 100 streams open: events per second through the
 *   streams, latency from a job's success (`completed_at`) to its event at the client (p50, p99),
 *   and the hub's D1 reads per event.
 *
 * Streams are read with client/events.ts (the CLI's follower) from this Node process.
 */
import { readFile } from "node:fs/promises";
import { stripVTControlCharacters } from "node:util";
import { z } from "zod";
import { followEvents } from "../client/events.ts";
import { cpuMs, uploadAll, waitUntilTerminal } from "./pipeline.ts";
import type { Stack } from "./stack.ts";
import { header, percentile, round, row } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

const HEARTBEAT_SECONDS = 15;

const HubStats = z.object({
	streams: z.number(),
	d1Reads: z.number(),
	notifications: z.number(),
	notificationsSkipped: z.number(),
	eventsRead: z.number(),
	writes: z.number(),
	heartbeats: z.number(),
});
type HubStats = z.infer<typeof HubStats>;

export interface IdleRun {
	streams: number;
	seconds: number;
	hubD1ReadsPerMinute: number;
	workerdCpuMsPerMinute: number;
	/** Per open stream per hour. */
	perStreamHour: { d1Reads: number; doRequests: number; cpuMs: number };
}

export interface BusyRun {
	streams: number;
	n: number;
	eventsReceived: number;
	/** Events per second through each stream, and through all of them together. */
	eventsPerSecondPerStream: number;
	eventsPerSecondTotal: number;
	latencyMs: { p50: number; p99: number };
	hubD1ReadsPerEvent: number;
	notificationsPerEvent: number;
	workerdCpuMsPerEvent: number;
}

export interface EventsResult {
	idle: IdleRun[];
	busy: BusyRun[];
}

/** The last `event_hub_stats` line of the log (the hub's counters since it started). */
async function hubStats(logPath: string): Promise<HubStats | null> {
	const lines = (await readFile(logPath, "utf8")).split("\n").map(stripVTControlCharacters);
	for (const line of lines.reverse()) {
		if (!line.includes('"event_hub_stats"')) continue;
		const json = line.slice(line.indexOf("{"));
		const parsed = HubStats.safeParse(JSON.parse(json));
		if (parsed.success) return parsed.data;
	}
	return null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens `count` streams under `prefix`; each received job event is recorded with its arrival time. */
async function openStreams(stack: Stack, count: number, prefix: string) {
	const abort = new AbortController();
	const arrivals: { stream: number; jobId: string; completedAt: number; at: number }[] = [];
	let opened = 0;
	const Body = z.object({ data: z.object({ id: z.string(), completed_at: z.string() }) });
	const readers = Array.from({ length: count }, async (_, stream) => {
		try {
			for await (const event of followEvents({
				baseUrl: stack.url,
				token: stack.token,
				query: { prefix },
				signal: abort.signal,
				onOpen: () => opened++,
			})) {
				const body = Body.parse(event.data);
				arrivals.push({ stream, jobId: body.data.id, completedAt: Date.parse(body.data.completed_at), at: Date.now() });
			}
		} catch (err) {
			if (!abort.signal.aborted) throw err;
		}
	});
	while (opened < count) await sleep(100);
	return {
		arrivals,
		close: async () => {
			abort.abort();
			await Promise.allSettled(readers);
		},
	};
}

/** Waits for the hub's next stats line (a heartbeat), so that a measurement starts and ends on one. */
async function nextStats(logPath: string): Promise<HubStats> {
	const before = (await hubStats(logPath))?.heartbeats ?? -1;
	for (let i = 0; i < HEARTBEAT_SECONDS * 10 + 50; i++) {
		const now = await hubStats(logPath);
		if (now && now.heartbeats > before) return now;
		await sleep(100);
	}
	throw new Error("the event hub wrote no stats line within a heartbeat");
}

export async function runEvents(
	stack: Stack,
	options: { images: WorkloadImage[]; n: number; idleSeconds: number; log: (line: string) => void },
): Promise<EventsResult> {
	const result: EventsResult = { idle: [], busy: [] };
	for (const count of [1, 100]) {
		options.log(`events: ${count} idle stream(s), ${options.idleSeconds} s`);
		const streams = await openStreams(stack, count, `bench/events-idle-${count}/`);
		const start = await nextStats(stack.logPath);
		const cpuStart = await cpuMs(stack.workerdPid);
		const t0 = Date.now();
		await sleep(options.idleSeconds * 1000);
		const end = await nextStats(stack.logPath);
		const minutes = (Date.now() - t0) / 60_000;
		const cpu = (await cpuMs(stack.workerdPid)) - cpuStart;
		await streams.close();
		const reads = end.d1Reads - start.d1Reads;
		const doRequests = end.notifications - start.notifications;
		result.idle.push({
			streams: count,
			seconds: round(minutes * 60, 0),
			hubD1ReadsPerMinute: round(reads / minutes, 2),
			workerdCpuMsPerMinute: round(cpu / minutes, 0),
			perStreamHour: {
				d1Reads: round((reads / minutes / count) * 60, 1),
				// Each stream is one DO request when it opens; notifications are shared.
				doRequests: round((doRequests / minutes / count) * 60, 1),
				cpuMs: round((cpu / minutes / count) * 60, 0),
			},
		});
	}
	for (const count of [1, 100]) {
		const prefix = `bench/events-busy-${count}/`;
		options.log(`events: ${count} stream(s) while ${options.n} images are captioned`);
		const streams = await openStreams(stack, count, prefix);
		const before = await nextStats(stack.logPath);
		const cpuStart = await cpuMs(stack.workerdPid);
		const started = Date.now();
		await uploadAll(stack, prefix, options.images, options.n, 16);
		await waitUntilTerminal(stack, 600_000);
		// Every stream has every job's event (or the wait ends).
		const deadline = Date.now() + 30_000;
		while (streams.arrivals.length < options.n * count && Date.now() < deadline) await sleep(100);
		const lastArrival = Math.max(...streams.arrivals.map((a) => a.at));
		const cpu = (await cpuMs(stack.workerdPid)) - cpuStart;
		const after = await nextStats(stack.logPath);
		await streams.close();
		const seconds = (lastArrival - started) / 1000;
		const latencies = streams.arrivals.map((a) => a.at - a.completedAt);
		const received = streams.arrivals.length;
		result.busy.push({
			streams: count,
			n: options.n,
			eventsReceived: received,
			eventsPerSecondPerStream: round(received / count / seconds, 1),
			eventsPerSecondTotal: round(received / seconds, 1),
			latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
			hubD1ReadsPerEvent: round((after.d1Reads - before.d1Reads) / options.n, 2),
			notificationsPerEvent: round((after.notifications - before.notifications) / options.n, 2),
			workerdCpuMsPerEvent: round(cpu / options.n, 1),
		});
	}
	return result;
}

export function eventsMarkdown(result: EventsResult | null): string[] {
	if (!result) return [];
	return [
		"#### Event stream (GET /v1/events)",
		"",
		...header([
			"idle streams",
			"hub D1 reads/min",
			"workerd CPU ms/min",
			"per stream-hour: D1 reads",
			"DO requests",
			"CPU ms",
		]),
		...result.idle.map((r) =>
			row([
				r.streams,
				r.hubD1ReadsPerMinute,
				r.workerdCpuMsPerMinute,
				r.perStreamHour.d1Reads,
				r.perStreamHour.doRequests,
				r.perStreamHour.cpuMs,
			]),
		),
		"",
		...header([
			"busy streams",
			"images",
			"events received",
			"events/s per stream",
			"events/s total",
			"latency p50 / p99 (ms)",
			"hub D1 reads/event",
			"notifications/event",
			"workerd CPU ms/event",
		]),
		...result.busy.map((r) =>
			row([
				r.streams,
				r.n,
				r.eventsReceived,
				r.eventsPerSecondPerStream,
				r.eventsPerSecondTotal,
				`${r.latencyMs.p50} / ${r.latencyMs.p99}`,
				r.hubD1ReadsPerEvent,
				r.notificationsPerEvent,
				r.workerdCpuMsPerEvent,
			]),
		),
		"",
	];
}
