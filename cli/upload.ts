/**
 * `r2c upload <files or folders…>`: every image under the arguments goes to `PUT /v1/images/{key}`
 * (at most `--concurrency` at a time), non-images are skipped with the reason, and with `--wait`
 * the jobs are followed on the event stream (GET /v1/events; polled when it cannot be opened) until
 * each is captioned or failed. Resumable: a file whose identical
 * bytes (its MD5, which is the object's ETag) already have a job for its key is not uploaded
 * again. With a new `--prompt`, or `--retry-failed` for a failed job, that object is captioned
 * again through `POST /v1/jobs` (uploading the same bytes again would only return the old job).
 */
import { openAsBlob } from "node:fs";
import type { StreamEvent } from "../client/events.ts";
import { ApiError, isTerminal, type Job, ok, uploadImage } from "../client/index.ts";
import type { Context } from "./context.ts";
import { CliError, type Described, describe, isFatal } from "./errors.ts";
import { openEvents } from "./events.ts";
import { collectFiles, type LocalFile, md5File, sniffFile } from "./files.ts";
import { type OutputFlags, outputBody, outputHeaders, outputRequest } from "./output-options.ts";
import { forEachLimit, sleep, sleepUnlessWoken } from "./pool.ts";
import { eventLine, type Progress, reporter } from "./progress.ts";
import { resultsFormat, writeResults } from "./results.ts";

export interface UploadOptions extends OutputFlags {
	prefix: string;
	prompt?: string;
	concurrency: number;
	wait: boolean;
	/** Caption again the files whose identical bytes have only failed jobs. */
	retryFailed: boolean;
	out?: string;
}

type Action = "uploaded" | "resumed" | "recaptioned" | "skipped" | "error";

interface Entry {
	file: LocalFile;
	action?: Action;
	job?: Job;
	reason?: string;
	error?: Described;
}

const POLL_MS = 1000;

/** A job event's Job JSON. */
const jobOfEvent = (event: StreamEvent): Job | null =>
	event.type.startsWith("job.") && typeof event.data === "object" && event.data !== null && "data" in event.data
		? (event.data.data as Job)
		: null;

/** What `--json` prints for one file. */
function fileJson(e: Entry) {
	return {
		file: e.file.path,
		key: e.file.key,
		action: e.action ?? "error",
		...(e.reason !== undefined ? { reason: e.reason } : {}),
		...(e.error !== undefined ? { error: e.error } : {}),
		...(e.job !== undefined ? { job: e.job } : {}),
	};
}

function outcomeLine(e: Entry, wait: boolean): string {
	const job = e.job as Job;
	const earlier = e.action === "resumed" ? " (from an earlier run)" : "";
	if (job.status === "succeeded") return eventLine("captioned", e.file.key, `${job.caption ?? ""}${earlier}`);
	if (job.status === "failed") {
		return eventLine("failed", e.file.key, `${job.error?.code}: ${job.error?.message}${earlier}`);
	}
	const what = e.action === "resumed" ? `${job.id} already has these bytes (${job.status})` : job.id;
	return eventLine(wait ? job.status : (e.action as string), e.file.key, what);
}

export async function upload(ctx: Context, inputs: string[], options: UploadOptions): Promise<number> {
	if (options.out !== undefined) resultsFormat(options.out);
	if (!Number.isInteger(options.concurrency) || options.concurrency < 1 || options.concurrency > 64) {
		throw new CliError("--concurrency must be a whole number from 1 to 64");
	}
	const outputs = await outputRequest(options);
	const started = Date.now();
	const entries: Entry[] = (await collectFiles(inputs, options.prefix)).map((file) => ({ file }));
	if (entries.length === 0) throw new CliError(`no files in ${inputs.join(", ")}`);

	const report = reporter(ctx.json);
	for (const entry of entries) {
		const sniffed = await sniffFile(entry.file);
		if (sniffed.kind === "skip") {
			Object.assign(entry, { action: "skipped", reason: sniffed.reason });
			report.line(eventLine("skipped", entry.file.path, sniffed.reason));
		}
	}
	const images = entries.filter((e) => e.action === undefined);
	const tally = { uploaded: 0, resumed: 0, captioned: 0, failed: 0 };
	const progress: Progress = { total: images.length, done: 0, counts: tally };
	const pending = new Map<string, Entry>();
	let fatal: unknown = null;
	let placing = true;

	/** A job reached its last state (or the file could not be uploaded): count and print it. */
	const settle = (e: Entry) => {
		progress.done++;
		if (e.job?.status === "succeeded") tally.captioned++;
		else tally.failed++;
		report.line(e.job ? outcomeLine(e, options.wait) : eventLine("error", e.file.key, e.error?.message));
		report.update(progress);
	};

	const place = async (e: Entry) => {
		const md5 = await md5File(e.file.path);
		const known = await ok(ctx.api.GET("/v1/jobs", { params: { query: { key: e.file.key, limit: 100 } } }));
		// Newest first: when the newest job is of other bytes, the bucket holds those now.
		const sameBytes = known.data[0]?.etag === md5 ? known.data.filter((j) => j.etag === md5) : [];
		const done = sameBytes.find(
			(j) =>
				(options.prompt === undefined || j.prompt === options.prompt) &&
				(outputs.kind === undefined || j.output === outputs.kind) &&
				(outputs.language === undefined || j.language?.toLowerCase() === outputs.language.toLowerCase()) &&
				!(options.retryFailed && j.status === "failed"),
		);
		if (done) {
			Object.assign(e, { action: "resumed", job: done });
			tally.resumed++;
		} else if (sameBytes.length > 0) {
			// The bucket already holds these bytes: a new job for them, with this run's prompt.
			const body = {
				key: e.file.key,
				...(options.prompt !== undefined ? { prompt: options.prompt } : {}),
				...outputBody(outputs),
			};
			Object.assign(e, { action: "recaptioned", job: await ok(ctx.api.POST("/v1/jobs", { body })) });
			tally.uploaded++;
		} else {
			const bytes = await openAsBlob(e.file.path);
			const job = await uploadImage(ctx.api, e.file.key, bytes, {
				prompt: options.prompt,
				outputHeaders: outputHeaders(outputs),
			});
			Object.assign(e, { action: "uploaded", job });
			tally.uploaded++;
		}
		const job = e.job as Job;
		const finished = early.get(job.id);
		if (finished) e.job = finished;
		if (isTerminal((e.job as Job).status)) settle(e);
		else if (options.wait) pending.set(job.id, e);
		else {
			progress.done++;
			report.line(outcomeLine(e, false));
			report.update(progress);
		}
	};

	/** Jobs whose event came before their upload's answer was handled. */
	const early = new Map<string, Job>();
	const onEvent = (event: StreamEvent) => {
		const job = jobOfEvent(event);
		if (!job || !isTerminal(job.status)) return;
		const e = pending.get(job.id);
		if (!e) {
			early.set(job.id, job);
			return;
		}
		pending.delete(job.id);
		e.job = job;
		settle(e);
		wake();
	};
	let wake: () => void = () => {};
	// Opened before the first upload, so that no job's event can pass unseen.
	const events = options.wait
		? openEvents(ctx, { prefix: options.prefix || undefined, types: "job.succeeded,job.failed" }, onEvent)
		: null;
	const streaming = events !== null && (await events.opened);

	/** With the stream: wait until every job has had its event (no request); else poll. */
	const follow = async () => {
		while (!fatal && (placing || pending.size > 0) && events?.state.error === null) {
			await sleepUnlessWoken(
				new Promise<void>((resolve) => {
					wake = resolve;
				}),
				POLL_MS,
			);
		}
		if (!fatal && (placing || pending.size > 0)) await poll();
	};

	const poll = async () => {
		while (!fatal && (placing || pending.size > 0)) {
			await sleep(POLL_MS);
			await forEachLimit(
				[...pending],
				options.concurrency,
				async ([id, e]) => {
					try {
						e.job = await ok(ctx.api.GET("/v1/jobs/{id}", { params: { path: { id } } }));
						if (isTerminal(e.job.status)) {
							pending.delete(id);
							settle(e);
						}
					} catch (err) {
						if (isFatal(err) || !(err instanceof ApiError)) fatal ??= err;
					}
				},
				() => fatal !== null,
			);
			report.update(progress);
		}
	};

	const interrupted = () => {
		report.stop();
		process.stderr.write(
			`\nr2c: interrupted after ${tally.uploaded} uploads. Run the same command again: files already uploaded are skipped.\n`,
		);
		process.exit(130);
	};
	process.once("SIGINT", interrupted);
	report.update(progress);
	try {
		const polling = options.wait ? (streaming ? follow() : poll()) : Promise.resolve();
		await forEachLimit(
			images,
			options.concurrency,
			async (e) => {
				try {
					await place(e);
				} catch (err) {
					if (isFatal(err) || !(err instanceof ApiError)) {
						fatal ??= err;
						return;
					}
					Object.assign(e, { action: "error", error: describe(err, ctx.apiUrl) });
					settle(e);
				}
			},
			() => fatal !== null,
		);
		placing = false;
		await polling;
	} finally {
		process.off("SIGINT", interrupted);
		report.stop();
		await events?.stop();
	}
	if (fatal) throw fatal;

	const jobs = images.flatMap((e) => (e.job ? [e.job] : []));
	if (options.out !== undefined) await writeResults(options.out, jobs);
	const skipped = entries.length - images.length;
	const counts = { files: entries.length, images: images.length, skipped, ...tally };
	if (ctx.json) {
		process.stdout.write(`${JSON.stringify({ counts, files: entries.map(fileJson) }, null, 2)}\n`);
	} else {
		const seconds = ((Date.now() - started) / 1000).toFixed(1);
		const parts = [
			`${tally.uploaded} uploaded`,
			...(tally.resumed ? [`${tally.resumed} already done`] : []),
			...(skipped ? [`${skipped} skipped`] : []),
			...(options.wait ? [`${tally.captioned} captioned`] : []),
			`${tally.failed} failed`,
		];
		console.log(`\n${parts.join(", ")} in ${seconds}s.${options.out ? ` Results: ${options.out}` : ""}`);
		if (!options.wait && jobs.length > 0) {
			console.log(
				`Follow them: r2c jobs list --prefix ${options.prefix || "<prefix>"}   (or upload again with --wait)`,
			);
		}
	}
	return tally.failed > 0 ? 1 : 0;
}
