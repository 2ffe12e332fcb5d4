/**
 * The upload-memory scenario: how much a 25 MiB `PUT /v1/images/{key}` adds to the
 * status Worker. Locally the status Worker, the consumer, D1 and R2 all live in one workerd
 * process, so each run measures that process's peak resident memory during the upload above its
 * resident memory just before it (the peak counter, VmHWM, is reset first and VmRSS is also
 * sampled every 10 ms). That counts local R2 storing the object and workerd's HTTP layer too, so
 * the same uploads also go through a control Worker that only pipes the body into R2
 * (bench/upload-control/): the status Worker's share is the difference. The stacks run with
 * DEPLOY_MODE "production" so that no caption job starts (the consumer stays idle). The body is a
 * JPEG header followed by random bytes (the upload only sniffs the first bytes), sent with its
 * Content-Length.
 */
import { randomBytes } from "node:crypto";
import { resetPeak, statusField } from "./memory.ts";
import type { Stack } from "./stack.ts";
import { header, percentile, round, row } from "./stats.ts";

export interface UploadMemoryResult {
	/** The status Worker, or the control Worker that pipes the body straight into R2. */
	worker: "status" | "control";
	bytes: number;
	status: number;
	seconds: number;
	workerdAtStartMb: number;
	workerdPeakAboveStartMb: number;
}

/** `size` bytes that sniff as a JPEG (its SOI and APP0 markers), then random ones. */
function jpegOfSize(size: number): Uint8Array {
	const body = new Uint8Array(randomBytes(size));
	body.set([0xff, 0xd8, 0xff, 0xe0], 0);
	return body;
}

export async function runUploadMemory(
	stack: Stack,
	options: { bytes: number; runs: number; worker: UploadMemoryResult["worker"] },
): Promise<UploadMemoryResult[]> {
	const body = jpegOfSize(options.bytes);
	const upload = (name: string) =>
		fetch(`${stack.url}/v1/images/${encodeURIComponent(`bench/upload-memory/${Date.now()}-${name}.jpg`)}`, {
			method: "PUT",
			headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/octet-stream" },
			body,
		});
	// One upload first, not measured: workerd's allocator keeps what the first large body made it map.
	await (await upload("warm-up")).arrayBuffer();
	const results: UploadMemoryResult[] = [];
	for (let i = 0; i < options.runs; i++) {
		// Let the previous upload's garbage settle before measuring the next.
		await new Promise((r) => setTimeout(r, 3000));
		await resetPeak(stack.workerdPid);
		const atStart = await statusField(stack.workerdPid, "VmRSS");
		let sampledPeak = atStart;
		let uploading = true;
		const sampler = (async () => {
			while (uploading) {
				sampledPeak = Math.max(sampledPeak, await statusField(stack.workerdPid, "VmRSS"));
				await new Promise((r) => setTimeout(r, 10));
			}
		})();
		const started = Date.now();
		const res = await fetch(
			`${stack.url}/v1/images/${encodeURIComponent(`bench/upload-memory/${Date.now()}-${i}.jpg`)}`,
			{
				method: "PUT",
				headers: { authorization: `Bearer ${stack.token}`, "content-type": "application/octet-stream" },
				body,
			},
		);
		await res.arrayBuffer();
		uploading = false;
		await sampler;
		const peak = Math.max(sampledPeak, await statusField(stack.workerdPid, "VmHWM"));
		results.push({
			worker: options.worker,
			bytes: options.bytes,
			status: res.status,
			seconds: round((Date.now() - started) / 1000, 2),
			workerdAtStartMb: round(atStart),
			workerdPeakAboveStartMb: round(peak - atStart),
		});
	}
	return results;
}

export function uploadMemoryMarkdown(results: UploadMemoryResult[]): string[] {
	if (results.length === 0) return [];
	const lines = header(["Worker", "upload", "answer", "seconds", "workerd RSS at start", "workerd peak above start"]);
	for (const r of results) {
		lines.push(
			row([
				r.worker === "status" ? "status Worker" : "control: body piped straight to R2",
				`${round(r.bytes / 2 ** 20, 1)} MiB`,
				String(r.status),
				String(r.seconds),
				`${r.workerdAtStartMb} MB`,
				`${r.workerdPeakAboveStartMb} MB`,
			]),
		);
	}
	const median = (worker: UploadMemoryResult["worker"]) =>
		percentile(
			results.filter((r) => r.worker === worker).map((r) => r.workerdPeakAboveStartMb),
			50,
		);
	const added = round(median("status") - median("control"));
	return [
		"#### Memory of a streamed upload",
		"",
		...lines,
		"",
		`Median peak above start: status Worker ${median("status")} MB, control ${median("control")} MB; added by the status Worker: ${added} MB.`,
		"",
	];
}
