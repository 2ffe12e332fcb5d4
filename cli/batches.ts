/**
 * `r2c batch create|list|get|cancel` and `r2c export`, over the batches API (`/v1/batches`,
 * docs/batches.md) through the generated client. Error answers (401, 404, 409 …) become the
 * CLI's usual messages (cli/errors.ts).
 */

import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type Batch, type BatchStatus, type ExportFormat, ok } from "../client/index.ts";
import { type Context, printJson } from "./context.ts";
import { type OutputFlags, outputBody, outputRequest } from "./output-options.ts";
import { sleep } from "./pool.ts";
import { reporter } from "./progress.ts";

const POLL_MS = 2000;

const isFinished = (status: BatchStatus) => status === "completed" || status === "cancelled";

function describeBatch(b: Batch): string {
	const c = b.counts;
	const scope = b.prefix !== null ? `prefix ${b.prefix}` : `${b.key_count ?? 0} keys`;
	return (
		`${b.id}  ${b.status}  ${scope}  total ${c.total}: ${c.succeeded} succeeded, ${c.failed} failed, ` +
		`${c.skipped} skipped, ${c.missing} missing, ${c.cancelled} cancelled, ${c.queued + c.processing} to go`
	);
}

async function waitForBatch(ctx: Context, first: Batch): Promise<Batch> {
	const report = reporter(ctx.json);
	let batch = first;
	try {
		while (!isFinished(batch.status)) {
			const c = batch.counts;
			report.update({
				total: c.total,
				done: c.succeeded + c.failed + c.skipped + c.missing + c.cancelled,
				counts: { captioned: c.succeeded, failed: c.failed, skipped: c.skipped },
			});
			await sleep(POLL_MS);
			const id = batch.id;
			batch = await ok(ctx.api.GET("/v1/batches/{id}", { params: { path: { id } } }));
		}
	} finally {
		report.stop();
	}
	return batch;
}

function show(ctx: Context, batch: Batch): void {
	if (ctx.json) printJson(batch);
	else console.log(describeBatch(batch));
}

export async function createBatch(
	ctx: Context,
	options: { prefix: string; prompt?: string; wait: boolean } & OutputFlags,
): Promise<number> {
	const body = {
		prefix: options.prefix,
		skip_captioned: true,
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
