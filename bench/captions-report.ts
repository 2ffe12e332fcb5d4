/** Markdown tables of the captions scenario (bench/captions.ts), for bench/report.ts. */
import { type CaptionsReport, OTHER_MODEL, type RecaptionResult, TARGET_MODEL } from "./captions.ts";
import { header, row } from "./stats.ts";

function recaptionTable(r: RecaptionResult): string[] {
	const meter = (m: RecaptionResult["listingPerObject"]) =>
		`${m.rowsWritten} written, ${m.rowsRead} read, ${m.d1Queries} queries`;
	return [
		`${r.n.toLocaleString("en")} objects: ${r.onTarget.toLocaleString("en")} captioned by ${TARGET_MODEL}, ${r.onOther.toLocaleString("en")} by ${OTHER_MODEL}; \`recaption: { unless_model: [${TARGET_MODEL}] }\`.`,
		"",
		...header(["measure", "value"]),
		row([
			"jobs made (must be the other model's objects)",
			`**${r.jobsMade.toLocaleString("en")}** (skipped ${r.skipped})`,
		]),
		row(["listed + looked up + enqueued", `**${r.listedPerSecond} objects/s** (${r.listingSeconds} s)`]),
		row(["to `completed`", `${r.secondsToCompleted} s`]),
		row(["D1 rows per object listed, the listing alone", meter(r.listingPerObject)]),
		row(["D1 rows per object listed, the whole batch (captions and events included)", meter(r.wholePerObject)]),
		row(["D1 rows per job made, the whole batch", meter(r.wholePerJob)]),
		row([
			"R2 operations per object listed, the whole batch: Class A / Class B",
			`${r.cost.r2ClassA / 1000} / ${r.cost.r2ClassB / 1000}`,
		]),
	];
}

export function captionsMarkdown(c: CaptionsReport | null): string[] {
	if (!c) return [];
	const out: string[] = [];
	if (c.recaption) out.push("#### Re-caption (metered)", "", ...recaptionTable(c.recaption), "");
	if (c.list) {
		out.push(
			`#### Captions at ${c.list.captions.toLocaleString("en")} objects (D1 metered; export time and memory not)`,
			"",
			...header([
				"request",
				"pages",
				"D1 rows read a page (min / p50 / max)",
				"queries a page",
				"ms a page (p50 / p95)",
			]),
			...c.list.pages.map((p) =>
				row([
					`\`GET /v1/captions?prefix=${p.prefix}&limit=${p.limit}\``,
					p.pages,
					`${p.rowsReadPerPage.min} / ${p.rowsReadPerPage.p50} / ${p.rowsReadPerPage.max}`,
					p.d1QueriesPerPage,
					`${p.msPerPage.p50} / ${p.msPerPage.p95}`,
				]),
			),
			"",
			...header([
				"export",
				"seconds",
				"rows/s",
				"MB",
				"workerd RSS at start",
				"peak above start",
				"D1 queries",
				"rows read",
			]),
			...c.list.exports.map((e) =>
				row([
					e.format,
					e.seconds,
					e.rowsPerSecond.toLocaleString("en"),
					e.megabytes,
					`${e.workerdAtStartMb} MB`,
					`**${e.workerdPeakAboveStartMb} MB**`,
					e.d1Queries,
					e.rowsRead.toLocaleString("en"),
				]),
			),
			"",
		);
	}
	return out;
}
