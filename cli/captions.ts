/**
 * `r2c captions get|set|export`, over the captions API (`/v1/captions`, `/v1/exports/captions`,
 * docs/api.md#captions) through the generated client: an object's current caption and history, a
 * caption written by hand, and the current captions of a prefix as a file.
 */
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type ExportFormat, ok } from "../client/index.ts";
import { type Context, printJson } from "./context.ts";

export async function getCaption(ctx: Context, key: string): Promise<void> {
	const caption = await ok(ctx.api.GET("/v1/captions/{key}", { params: { path: { key } } }));
	if (ctx.json) return printJson(caption);
	console.log(`${caption.key}  (${caption.source}${caption.model ? `, ${caption.model}` : ""})\n${caption.text}\n`);
	for (const v of caption.history) {
		console.log(`v${v.version}  ${v.created_at}  ${v.source}${v.model ? `  ${v.model}` : ""}  ${v.text.slice(0, 100)}`);
	}
}

export async function setCaption(ctx: Context, key: string, text: string): Promise<void> {
	const caption = await ok(ctx.api.PUT("/v1/captions/{key}", { params: { path: { key } }, body: { text } }));
	if (ctx.json) return printJson(caption);
	console.log(`${caption.key}: version ${caption.versions} (human) is current.`);
}

/** `GET /v1/exports/captions`, streamed to `out` (or stdout) as the server sends it. */
export async function exportCaptions(ctx: Context, options: { prefix?: string; format: ExportFormat; out?: string }) {
	const query = { format: options.format, ...(options.prefix !== undefined ? { prefix: options.prefix } : {}) };
	const body = await ok(ctx.api.GET("/v1/exports/captions", { params: { query }, parseAs: "stream" }));
	const source = Readable.fromWeb(body as ReadableStream<Uint8Array>);
	if (options.out === undefined) await pipeline(source, process.stdout, { end: false });
	else {
		await pipeline(source, createWriteStream(options.out));
		if (!ctx.json) console.error(`Wrote ${options.out}`);
		else printJson({ prefix: options.prefix ?? "", format: options.format, out: options.out });
	}
}
