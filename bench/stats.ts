/** Small statistics helpers for the benchmark report. */

export function round(value: number, digits = 1): number {
	const f = 10 ** digits;
	return Math.round(value * f) / f;
}

/** Nearest-rank percentile (0 for an empty list). */
export function percentile(values: readonly number[], p: number): number {
	if (values.length === 0) return 0;
	const sorted = [...values].sort((a, b) => a - b);
	const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
	return round(sorted[rank - 1] as number, 1);
}

/** A Markdown table row, and a header with its separator line. */
export const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
export const header = (cells: string[]) => [row(cells), row(cells.map(() => "---"))];
