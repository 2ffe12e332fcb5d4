/**
 * The retention archive in R2: rows leave D1 as parts, one gzipped JSON Lines file each, under
 * `<kind>/date=YYYY-MM-DD/` (the UTC day the rows were created: a Hive-style partition that DuckDB,
 * Spark or ClickHouse read as a column). A part's name is made from its first and last row ids, so
 * writing the same rows again replaces the file instead of adding a second copy. The bucket is one
 * no event notification watches: nothing here is ever captioned.
 */

/** One line of a part: a row with its children (deliveries and attempts, batch keys). */
export type ArchiveLine = Record<string, unknown>;

/** The UTC day of a time, as `YYYY-MM-DD`. */
export const archiveDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** The name of the part holding rows `firstId`…`lastId` of `kind`, created on the day of `createdAt`. */
export const partName = (kind: string, createdAt: number, firstId: string, lastId: string): string =>
	`${kind}/date=${archiveDay(createdAt)}/${firstId}_${lastId}.jsonl.gz`;

/** JSON Lines, gzipped with the runtime's CompressionStream (no library needed). */
export async function gzipJsonLines(lines: ArchiveLine[]): Promise<Uint8Array> {
	const text = lines.map((line) => `${JSON.stringify(line)}\n`).join("");
	const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
	return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads a part back (tests, tooling): its lines, parsed. */
export async function gunzipJsonLines(bytes: ArrayBuffer): Promise<unknown[]> {
	const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
	const text = await new Response(stream).text();
	return text
		.split("\n")
		.filter((line) => line !== "")
		.map((line): unknown => JSON.parse(line));
}

/** Writes (or rewrites, with the same content) one part. */
export async function writePart(bucket: R2Bucket, name: string, lines: ArchiveLine[]): Promise<void> {
	await bucket.put(name, await gzipJsonLines(lines), {
		// A gzip file, not a gzip-encoded response: readers get the .gz bytes as they are.
		httpMetadata: { contentType: "application/gzip" },
		customMetadata: { rows: String(lines.length) },
	});
}
