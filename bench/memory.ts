/**
 * The memory scenario: peak resident memory while captioning a 6000×4000 JPEG and a PNG of over
 * 20 MB. Locally every Worker isolate, D1, R2 and the queues live in one workerd process, and the
 * Images binding is emulated with sharp inside wrangler's Node process. So, per image:
 *  - after the upload has returned, the kernel's peak-RSS counter (VmHWM) of both processes is
 *    reset (`echo 5 > /proc/<pid>/clear_refs`), which leaves the upload's own buffers out;
 *  - VmRSS is also sampled every 20 ms until the job is terminal;
 *  - the report gives the peak above the RSS at reset, for workerd (an upper bound on what the
 *    consumer isolate needed: it also counts D1/R2 work) and for the Images emulation (work that
 *    Cloudflare's Images service does in production, outside the Worker's 128 MB).
 */
import { readFile, writeFile } from "node:fs/promises";
import { isTerminal, type Job, ok, uploadImage } from "../client/index.ts";
import { api } from "./pipeline.ts";
import type { Stack } from "./stack.ts";
import { round } from "./stats.ts";
import type { WorkloadImage } from "./workload.ts";

export interface MemoryResult {
	image: string;
	bytes: number;
	status: string;
	caption: string | null;
	error: string | null;
	seconds: number;
	workerd: { idleMb: number; atResetMb: number; peakMb: number; peakAboveResetMb: number };
	imagesEmulation: { atResetMb: number; peakMb: number; peakAboveResetMb: number };
}

export async function statusField(pid: number, field: "VmRSS" | "VmHWM"): Promise<number> {
	const text = await readFile(`/proc/${pid}/status`, "utf8");
	const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
	return m ? Number(m[1]) / 1024 : 0;
}

/** Resets the peak-RSS counter to the current RSS (Linux ≥ 4.0; only for our own processes). */
export const resetPeak = (pid: number) => writeFile(`/proc/${pid}/clear_refs`, "5");

export async function runMemory(stack: Stack, images: WorkloadImage[], timeoutMs: number): Promise<MemoryResult[]> {
	const client = api(stack);
	const results: MemoryResult[] = [];
	for (const image of images) {
		// Let the previous job's garbage settle before measuring the next.
		await new Promise((r) => setTimeout(r, 2000));
		const idle = await statusField(stack.workerdPid, "VmRSS");
		const job = await uploadImage(client, `memory/${Date.now()}-${image.name}`, new Blob([image.bytes]));
		// The consumer starts after the queue's batch timeout (2 s), well after this reset.
		await Promise.all([resetPeak(stack.workerdPid), resetPeak(stack.wranglerPid)]);
		const atReset = await statusField(stack.workerdPid, "VmRSS");
		const imagesAtReset = await statusField(stack.wranglerPid, "VmRSS");
		let sampledPeak = atReset;
		let imagesSampledPeak = imagesAtReset;
		const started = Date.now();
		let final: Job = job;
		while (Date.now() - started < timeoutMs) {
			sampledPeak = Math.max(sampledPeak, await statusField(stack.workerdPid, "VmRSS"));
			imagesSampledPeak = Math.max(imagesSampledPeak, await statusField(stack.wranglerPid, "VmRSS"));
			final = await ok(client.GET("/v1/jobs/{id}", { params: { path: { id: job.id } } }));
			if (isTerminal(final.status)) break;
			await new Promise((r) => setTimeout(r, 20));
		}
		const peak = Math.max(sampledPeak, await statusField(stack.workerdPid, "VmHWM"));
		const imagesPeak = Math.max(imagesSampledPeak, await statusField(stack.wranglerPid, "VmHWM"));
		results.push({
			image: image.name,
			bytes: image.bytes.length,
			status: final.status,
			caption: final.caption,
			error: final.error ? `${final.error.code}: ${final.error.message}` : null,
			seconds: round((Date.now() - started) / 1000, 1),
			workerd: {
				idleMb: round(idle),
				atResetMb: round(atReset),
				peakMb: round(peak),
				peakAboveResetMb: round(peak - atReset),
			},
			imagesEmulation: {
				atResetMb: round(imagesAtReset),
				peakMb: round(imagesPeak),
				peakAboveResetMb: round(imagesPeak - imagesAtReset),
			},
		});
	}
	return results;
}
