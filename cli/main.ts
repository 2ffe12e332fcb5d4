/**
 * The `r2c` command: argument parsing (commander), global options, and one action per
 * subcommand. Every command takes `--json`, `--api-url` (R2C_API_URL or API_URL) and `--token` (R2C_TOKEN);
 * docs/cli.md is the reference.
 */

import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { type BatchStatus, type ExportFormat, JOB_STATUSES, type WebhookEventType } from "../client/index.ts";
import { type Context, context, defaultApiUrl, type GlobalOptions } from "./context.ts";
import { report } from "./errors.ts";
import type { EventsOptions } from "./events.ts";
import type { listJobs } from "./jobs.ts";
import { type OutputFlags, TEXT_OUTPUTS, WRITE_BACKS } from "./output-options.ts";

// Each action imports its command's module when it runs: `r2c jobs list` loads neither the
// upload code nor its CSV writer, progress bars or event stream.

const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
	version: string;
};

function integer(min: number, max: number) {
	return (value: string) => {
		const n = Number(value);
		if (!Number.isInteger(n) || n < min || n > max)
			throw new InvalidArgumentError(`a whole number from ${min} to ${max}`);
		return n;
	};
}

/** Wraps an action: builds the context, runs it, reports any error, sets the exit code. */
function run<A extends unknown[]>(action: (ctx: Context, ...args: A) => Promise<unknown>) {
	return async (...args: [...A, Record<string, unknown>, Command]) => {
		const command = args.at(-1) as Command;
		const globals = command.optsWithGlobals<GlobalOptions>();
		// Errors name the URL requests went to (without a `/v1` the user added) once it is known.
		let apiUrl = globals.apiUrl;
		try {
			const ctx = context(command);
			apiUrl = ctx.apiUrl;
			const code = await action(ctx, ...(args.slice(0, -1) as A));
			if (typeof code === "number" && code !== 0) process.exitCode = code;
		} catch (err) {
			report(err, apiUrl, globals.json === true);
		}
	};
}

const program = new Command("r2c")
	.description("Caption images with r2-captions: upload a folder, wait for the captions, get them as a file.")
	.version(version)
	.addOption(
		new Option("--api-url <url>", "status API base URL").default(
			defaultApiUrl(),
			"$R2C_API_URL, else $API_URL, else http://localhost:8787",
		),
	)
	.addOption(
		new Option("--token <token>", "ADMIN_TOKEN or an API key (default for a localhost URL: .dev.vars)").env(
			"R2C_TOKEN",
		),
	)
	.option("--json", "print JSON for scripts instead of text")
	.configureHelp({ showGlobalOptions: true })
	.showHelpAfterError("(add --help for usage)");

program
	.command("upload")
	.description("upload images (folders are walked), skip non-images and files already done, optionally wait")
	.argument("<paths...>", "image files and folders")
	.option("--prefix <prefix>", "object-key prefix, e.g. photos/", "")
	.option("--prompt <text>", "caption instruction or visual question for these images")
	.addOption(new Option("--output <kind>", "what to produce (default caption)").choices(TEXT_OUTPUTS))
	.option("--output-schema <file>", "produce JSON satisfying this JSON Schema file")
	.option("--language <tag>", "BCP 47 language of the result, e.g. de or pt-BR")
	.addOption(new Option("--write-back <target>", "also put the result next to the image").choices(WRITE_BACKS))
	.option("--concurrency <n>", "uploads (and polls) at a time", integer(1, 64), 8)
	.option("--wait", "wait until every job is captioned or failed")
	.option("--retry-failed", "caption again files whose identical bytes already have a failed job")
	.option("--out <file>", "write the jobs to results.jsonl (JSON Lines) or results.csv")
	.addHelpText("after", "\nExit code 1 if any job failed or any upload was refused.")
	.action(
		run(
			(
				ctx,
				paths: string[],
				options: OutputFlags & {
					prefix: string;
					prompt?: string;
					concurrency: number;
					wait?: boolean;
					retryFailed?: boolean;
					out?: string;
				},
			) =>
				import("./upload.ts").then(({ upload }) =>
					upload(ctx, paths, { ...options, wait: options.wait === true, retryFailed: options.retryFailed === true }),
				),
		),
	);

const jobs = program.command("jobs").description("list and inspect caption jobs");
jobs
	.command("list")
	.description("list jobs, newest first")
	.addOption(new Option("--status <status>", "only jobs in this status").choices(JOB_STATUSES))
	.option("--prefix <prefix>", "only keys starting with this")
	.option("--key <key>", "only this exact key")
	.option("--limit <n>", "jobs per page", integer(1, 100), 20)
	.option("--cursor <cursor>", "the next page (printed under the table)")
	.action(
		run((ctx, options: Parameters<typeof listJobs>[1]) =>
			import("./jobs.ts").then(({ listJobs }) => listJobs(ctx, options)),
		),
	);
jobs
	.command("get")
	.description("show one job")
	.argument("<id>", "job id (job_…)")
	.action(run((ctx, id: string) => import("./jobs.ts").then(({ getJob }) => getJob(ctx, id))));

const BATCH_STATUSES: BatchStatus[] = ["planned", "listing", "running", "completed", "cancelled"];
const batch = program.command("batch").description("caption every object under a prefix (the batches API)");
batch
	.command("create")
	.description("caption the objects already in the bucket under a prefix")
	.requiredOption("--prefix <prefix>", "object-key prefix, e.g. photos/")
	.option("--prompt <text>", "caption instruction or visual question")
	.addOption(new Option("--output <kind>", "what to produce (default caption)").choices(TEXT_OUTPUTS))
	.option("--output-schema <file>", "produce JSON satisfying this JSON Schema file")
	.option("--language <tag>", "BCP 47 language of the results, e.g. de or pt-BR")
	.addOption(new Option("--write-back <target>", "also put each result next to its image").choices(WRITE_BACKS))
	.option("--wait", "wait until the batch completes, or is planned (exit code 1 if any job failed)")
	.option("--dry-run", "plan only: count what it would caption and estimate calls, time and cost; no job")
	.action(
		run((ctx, options: OutputFlags & { prefix: string; prompt?: string; wait?: boolean; dryRun?: boolean }) =>
			import("./batches.ts").then(({ createBatch }) =>
				createBatch(ctx, { ...options, wait: options.wait === true, dryRun: options.dryRun === true }),
			),
		),
	);
batch
	.command("start")
	.description("run a planned batch (made with --dry-run)")
	.argument("<id>", "batch id (bat_…)")
	.option("--wait", "wait until the batch completes (exit code 1 if any job failed)")
	.action(
		run((ctx, id: string, options: { wait?: boolean }) =>
			import("./batches.ts").then(({ startBatch }) => startBatch(ctx, id, { wait: options.wait === true })),
		),
	);
batch
	.command("list")
	.description("list batches, newest first")
	.addOption(new Option("--status <status>", "only batches in this status").choices(BATCH_STATUSES))
	.option("--limit <n>", "batches per page", integer(1, 100), 20)
	.action(
		run((ctx, options: { status?: BatchStatus; limit: number }) =>
			import("./batches.ts").then(({ listBatches }) => listBatches(ctx, options)),
		),
	);
batch
	.command("get")
	.description("show one batch and its counts")
	.argument("<id>", "batch id (bat_…)")
	.action(run((ctx, id: string) => import("./batches.ts").then(({ getBatch }) => getBatch(ctx, id))));
batch
	.command("cancel")
	.description("cancel a batch: its queued jobs end cancelled, running ones finish")
	.argument("<id>", "batch id (bat_…)")
	.action(run((ctx, id: string) => import("./batches.ts").then(({ cancelBatch }) => cancelBatch(ctx, id))));

const FORMATS: ExportFormat[] = ["jsonl", "csv", "hf"];
const captions = program.command("captions").description("objects' current captions and their history");
captions
	.command("get")
	.description("show an object's current caption and every version of it")
	.argument("<key>", "object key")
	.action(run((ctx, key: string) => import("./captions.ts").then(({ getCaption }) => getCaption(ctx, key))));
captions
	.command("set")
	.description("write an object's caption by hand (it stays current until a re-caption with overwrite_human)")
	.argument("<key>", "object key")
	.argument("<text>", "the caption")
	.action(
		run((ctx, key: string, text: string) =>
			import("./captions.ts").then(({ setCaption }) => setCaption(ctx, key, text)),
		),
	);
captions
	.command("export")
	.description("download the current captions of a prefix: JSON Lines, CSV, or a Hugging Face metadata.jsonl")
	.option("--prefix <prefix>", "object-key prefix (default: everything the token sees)")
	.addOption(new Option("--format <format>", "jsonl, csv or hf").choices(FORMATS).makeOptionMandatory())
	.option("--out <file>", "write to this file instead of stdout")
	.action(
		run((ctx, options: { prefix?: string; format: ExportFormat; out?: string }) =>
			import("./captions.ts").then(({ exportCaptions }) => exportCaptions(ctx, options)),
		),
	);
program
	.command("export")
	.description("download a batch's results: JSON Lines, CSV, or a Hugging Face imagefolder metadata.jsonl")
	.argument("<batch>", "batch id (bat_…)")
	.addOption(new Option("--format <format>", "jsonl, csv or hf").choices(FORMATS).makeOptionMandatory())
	.option("--out <file>", "write to this file instead of stdout")
	.action(
		run((ctx, id: string, options: { format: ExportFormat; out?: string }) =>
			import("./batches.ts").then(({ exportBatch }) => exportBatch(ctx, id, options)),
		),
	);

program
	.command("events")
	.description("print the events of your scope as they happen (JSON lines), until Ctrl-C")
	.option("--batch <id>", "only this batch's events and its jobs' (bat_…)")
	.option("--prefix <prefix>", "only jobs whose key starts with this")
	.option("--types <types>", "comma-separated event types, e.g. job.failed,batch.completed")
	.option("--after <id>", "first replay every retained event after this event id")
	.action(
		run((ctx, options: EventsOptions) => import("./events.ts").then(({ printEvents }) => printEvents(ctx, options))),
	);

const WEBHOOK_EVENTS: WebhookEventType[] = ["job.succeeded", "job.failed"];
const webhooks = program.command("webhooks").description("webhook tools");
webhooks
	.command("listen")
	.description("subscribe a local receiver, print each verified event, remove the subscription on Ctrl-C")
	.option("--forward-to <url>", "also POST each event (body and signature headers) to this URL")
	.addOption(
		new Option("--events <types...>", "event types to subscribe to").choices(WEBHOOK_EVENTS).default(WEBHOOK_EVENTS),
	)
	.option("--prefix <prefix>", "only jobs whose key starts with this")
	.addOption(
		new Option("--port <n>", "port of the local receiver").argParser(integer(0, 65535)).default(0, "a free one"),
	)
	.option("--public-url <url>", "subscribe this URL instead (a tunnel to --port), for a deployed service")
	.action(
		run(
			(
				ctx,
				options: { forwardTo?: string; events: WebhookEventType[]; prefix?: string; port: number; publicUrl?: string },
			) => import("./listen.ts").then(({ listen }) => listen(ctx, options)),
		),
	);

await program.parseAsync();
