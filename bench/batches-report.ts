/** Markdown tables of the batch scenarios (bench/batches.ts), for bench/report.ts. */
import type { BackfillResult, Cost, ExportResult } from "./batches.ts";
import { STAGES } from "./metered/stages.ts";
import { header, round, row } from "./stats.ts";

export interface BatchesReport {
	backfill: BackfillResult | null;
	/** The same batch with `output: tags` and `write_back: sidecar`. */
	writeBack?: BackfillResult;
	exports: ExportResult[];
	/** Cost per 1,000 images by pipeline: "batch backfill", "uploads, workers/consumer", "uploads, naive baseline". */
	costs: { pipeline: string; cost: Cost }[];
}

function backfillTable(b: BackfillResult): string[] {
	return [
		...header(["objects", "listed + enqueued", "listing took", "to `completed`", "captions/s", "counts at the end"]),
		row([
			b.n.toLocaleString("en"),
			`**${b.listedPerSecond}/s**`,
			`${b.listingSeconds} s`,
			`**${b.secondsToCompleted} s**`,
			b.captionsPerSecond,
			Object.entries(b.counts)
				.filter(([, v]) => v > 0)
				.map(([k, v]) => `${k} ${v}`)
				.join(", "),
		]),
	];
}

function exportTable(results: ExportResult[]): string[] {
	const lines = header([
		"jobs",
		"format",
		"seconds",
		"rows/s",
		"MB",
		"workerd RSS at start",
		"workerd peak above start",
	]);
	for (const e of results) {
		lines.push(
			row([
				e.jobs.toLocaleString("en"),
				e.format,
				e.seconds,
				`**${e.rowsPerSecond.toLocaleString("en")}**`,
				e.megabytes,
				`${e.workerdAtStartMb} MB`,
				`**${e.workerdPeakAboveStartMb} MB**`,
			]),
		);
	}
	return lines;
}

function costTable(costs: BatchesReport["costs"]): string[] {
	const lines = header([
		"per 1,000 images",
		"N",
		"D1 queries",
		"D1 rows read",
		"D1 rows written",
		"queue messages",
		"queue operations",
		"Worker invocations",
		"R2 Class A",
		"R2 Class B",
	]);
	for (const { pipeline, cost: c } of costs) {
		lines.push(
			row([
				pipeline,
				c.images,
				c.d1Queries,
				c.d1RowsRead,
				c.d1RowsWritten,
				c.queueMessages,
				c.queueOperations,
				c.invocations,
				c.r2ClassA,
				c.r2ClassB,
			]),
		);
	}
	return lines;
}

const KINDS = ["d1", "do", "r2", "images", "ai", "queue"] as const;

/** D1 rows written per caption message, every stage's together. */
const rowsPerMessage = (cost: Cost) => Object.values(cost.breakdown.rowsWritten).reduce((a, b) => a + b, 0);

/** Round trips per caption message by stage, one column pair (count, ms) per consumer. */
function breakdownTable(costs: BatchesReport["costs"]): string[] {
	const measured = costs.filter(({ cost }) => cost.breakdown?.messages > 0);
	if (measured.length === 0) return [];
	const lines = header([
		"stage (per message)",
		...measured.flatMap(({ pipeline }) => [`${pipeline}: round trips`, "ms", "D1 rows written"]),
	]);
	const cell = (kinds: Record<string, { n: number; ms: number }>, rows: number | undefined) => {
		const parts = KINDS.filter((k) => kinds[k]).map((k) => `${kinds[k]?.n} ${k}`);
		const ms = Object.values(kinds).reduce((a, t) => a + t.ms, 0);
		return [parts.join(" + ") || "—", parts.length ? ms.toFixed(2) : "—", rows ? String(rows) : "—"];
	};
	for (const stage of STAGES) {
		lines.push(
			row([
				stage,
				...measured.flatMap(({ cost }) => cell(cost.breakdown.stages[stage] ?? {}, cost.breakdown.rowsWritten[stage])),
			]),
		);
	}
	lines.push(
		row([
			"**invocation wall time / message**",
			...measured.flatMap(({ cost }) => [
				`${cost.breakdown.messages} messages`,
				`**${cost.breakdown.msPerMessage}**`,
				// Per-stage figures are rounded to two places; their sum is too (no 6.4399999999999995).
				String(round(rowsPerMessage(cost), 2)),
			]),
		]),
	);
	return lines;
}

/** Rows written per image by statement, one table per pipeline (the statements that wrote any). */
function bySqlTables(costs: BatchesReport["costs"]): string[] {
	return costs.flatMap(({ pipeline, cost }) =>
		cost.rowsWrittenBySql?.length
			? [
					`${pipeline}:`,
					"",
					...header(["statement (start of its SQL)", "runs / image", "rows written / image"]),
					...cost.rowsWrittenBySql.map((s) => row([`\`${s.sql.replaceAll("|", "\\|")}\``, s.runs, s.rows])),
					"",
				]
			: [],
	);
}

export function batchesMarkdown(b: BatchesReport): string[] {
	const out: string[] = [];
	if (b.backfill)
		out.push(
			"#### Backfill: one prefix batch over objects already in the bucket",
			"",
			...backfillTable(b.backfill),
			"",
		);
	if (b.writeBack)
		out.push(
			"#### Write-back: the same batch with `output: tags`, `write_back: sidecar`",
			"",
			...backfillTable(b.writeBack),
			"",
			`Jobs made: ${b.writeBack.jobsMade} for ${b.writeBack.n} objects; sidecar echoes ignored: ${b.writeBack.echoesIgnored}.`,
			"",
		);
	if (b.exports.length) out.push("#### Results export (streamed)", "", ...exportTable(b.exports), "");
	if (b.costs.length) out.push("#### Cost per 1,000 images, model excluded (metered)", "", ...costTable(b.costs), "");
	const stages = breakdownTable(b.costs);
	if (stages.length)
		out.push("#### Round trips per caption message, by stage (metered, 0 ms model)", "", ...stages, "");
	const bySql = bySqlTables(b.costs);
	if (bySql.length) out.push("#### D1 rows written per image, by statement (metered)", "", ...bySql);
	return out;
}
