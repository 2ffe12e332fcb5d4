/**
 * `r2c batch create|list|get|cancel|start` and `r2c export`, over the batches API (`/v1/batches`,
 * docs/batches.md) through the generated client. Error answers (401, 404, 409 …) become the
 * CLI's usual messages (cli/errors.ts).
 */

import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { StreamEvent } from "../client/events.ts";
import { type Batch, type BatchStatus, type ExportFormat, ok } from "../client/index.ts";
import { type Context, printJson } from "./context.ts";
import { openEvents } from "./events.ts";
import { type OutputFlags, outputBody, outputRequest } from "./output-options.ts";
import { sleep, sleepUnlessWoken } from "./pool.ts";
import { reporter } from "./progress.ts";

const POLL_MS = 2000;
/** With a stream: at most one read a second, and one a minute if nothing happens (in case it stalls). */
const MIN_READ_MS = 1000;
const SAFETY_POLL_MS = 60_000;

/** Where `--wait` stops: a dry run's plan, or a final status. */
const isFinished = (status: BatchStatus) => status === "planned" || status === "completed" || status === "cancelled";

function describeBatch(b: Batch): string {
	const c = b.counts;
	const scope = b.prefix !== null ? `prefix ${b.prefix}` : `${b.key_count ?? 0} keys`;
	const e = b.estimate;
	if (b.status === "planned" && e !== null) {
		const usd = e.usd === null ? "no published price" : `$${e.usd.toFixed(4)}`;
		return (
			`${b.id}  planned  ${scope}  total ${c.total}: ${c.skipped} skipped, ${c.missing} missing; ` +
			`${e.model_calls} calls to ${e.model}, ${e.minutes_at_rate_limit} min at its rate limit, ${usd} (start with: r2c batch start ${b.id})`
		);
	}
	const u = b.usage;
	const usage =
		u.jobs_with_usage === 0
			? ""
			: `; ${u.input_tokens} input, ${u.output_tokens} output tokens reported by ${u.jobs_with_usage} jobs`;
	return (
		`${b.id}  ${b.status}  ${scope}  total ${c.total}: ${c.succeeded} succeeded, ${c.failed} failed, ` +
		`${c.skipped} skipped, ${c.missing} missing, ${c.cancelled} cancelled, ${c.queued + c.processing} to go${usage}`
	);
}

/** A batch event's body: its Batch JSON is the newest state, no request needed. */
const batchOfEvent = (event: StreamEvent): Batch | null =>
	event.type.startsWith("batch.") && typeof event.data === "object" && event.data !== null && "data" in event.data
		? (event.data.data as Batch)
		: null;

/** What the progress line shows of a batch. */
function progressOf(batch: Batch) {
	const c = batch.counts;
	return {
		total: c.total,
		done: c.succeeded + c.failed + c.skipped + c.missing + c.cancelled,
		counts: { captioned: c.succeeded, failed: c.failed, skipped: c.skipped },
		etaSeconds: batch.eta_seconds,
	};
}

/**
 * Follows the batch on the event stream: a batch event carries the batch, a job's event has it read
 * again (at most once a second). Without a stream (it could not be opened) it polls every 2 s.
 */
async function waitForBatch(ctx: Context, first: Batch): Promise<Batch> {
	const report = reporter(ctx.json);
	const id = first.id;
	let batch = first;
	let pushed: Batch | null = null;
	// Set by every event, so that one arriving while the batch is being read is not slept through.
	let changed = false;
	let wake: () => void = () => {};
	const events = openEvents(ctx, { batch_id: id }, (event) => {
		pushed = batchOfEvent(event) ?? pushed;
		changed = true;
		wake();
	});
	const live = await events.opened;
	try {
		// Read once the stream is open: what happened before is in this answer, what follows comes as events.
		batch = await ok(ctx.api.GET("/v1/batches/{id}", { params: { path: { id } } }));
		while (!isFinished(batch.status)) {
			report.update(progressOf(batch));
			const streaming = live && events.state.error === null;
			const woken = new Promise<void>((resolve) => {
				wake = resolve;
				if (changed) resolve();
			});
			await (streaming ? sleepUnlessWoken(woken, SAFETY_POLL_MS).then(() => sleep(MIN_READ_MS)) : sleep(POLL_MS));
			changed = false;
			const next: Batch | null = pushed;
			pushed = null;
			batch = next ?? (await ok(ctx.api.GET("/v1/batches/{id}", { params: { path: { id } } })));
		}
		// The last line (or frame) shows the end, not the last state seen while it ran.
		report.update(progressOf(batch));
	} finally {
		report.stop();
		await events.stop();
	}
	return batch;
}

function show(ctx: Context, batch: Batch): void {
	if (ctx.json) printJson(batch);
	else console.log(describeBatch(batch));
}

export async function createBatch(
	ctx: Context,
	options: { prefix: string; prompt?: string; wait: boolean; dryRun: boolean } & OutputFlags,
): Promise<number> {
	const body = {
		prefix: options.prefix,
		skip_captioned: true,
		dry_run: options.dryRun,
		...(options.prompt !== undefined ? { prompt: options.prompt } : {}),
		...outputBody(await outputRequest(options)),
	};
	let batch = await ok(ctx.api.POST("/v1/batches", { body }));
	if (options.wait) batch = await waitForBatch(ctx, batch);
	show(ctx, batch);
	return options.wait && batch.counts.failed > 0 ? 1 : 0;
}

export async function listBatches(ctx: Context, options: { status?: BatchStatus; limit: number }): Promise<void> {
	const query = { status: options.status, limit: options.limit };
	const page = await ok(ctx.api.GET("/v1/batches", { params: { query } }));
	if (ctx.json) return printJson(page);
	console.log(page.data.length === 0 ? "No batches." : page.data.map(describeBatch).join("\n"));
}

export async function getBatch(ctx: Context, id: string): Promise<void> {
	show(ctx, await ok(ctx.api.GET("/v1/batches/{id}", { params: { path: { id } } })));
}

export async function cancelBatch(ctx: Context, id: string): Promise<void> {
	show(ctx, await ok(ctx.api.POST("/v1/batches/{id}/cancel", { params: { path: { id } } })));
}

/** `POST /v1/batches/{id}/start`: runs a dry run's planned batch. */
export async function startBatch(ctx: Context, id: string, options: { wait: boolean }): Promise<number> {
	let batch = await ok(ctx.api.POST("/v1/batches/{id}/start", { params: { path: { id } } }));
	if (options.wait) batch = await waitForBatch(ctx, batch);
	show(ctx, batch);
	return options.wait && batch.counts.failed > 0 ? 1 : 0;
}

/** `GET /v1/batches/{id}/results`, streamed to `out` (or stdout) as the server sends it. */
export async function exportBatch(ctx: Context, id: string, options: { format: ExportFormat; out?: string }) {
	const body = await ok(
		ctx.api.GET("/v1/batches/{id}/results", {
			params: { path: { id }, query: { format: options.format } },
			parseAs: "stream",
		}),
	);
	const source = Readable.fromWeb(body as ReadableStream<Uint8Array>);
	if (options.out === undefined) await pipeline(source, process.stdout, { end: false });
	else {
		await pipeline(source, createWriteStream(options.out));
		if (!ctx.json) console.error(`Wrote ${options.out}`);
		else printJson({ batch: id, format: options.format, out: options.out });
	}
}
