/**
 * A file made once and kept on disk (test fixtures, bench images under node_modules/.cache): read
 * when it is there, made and written otherwise.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

/** `file`'s bytes, made with `make()` and written first if it is not there yet. */
export async function cachedFile(file: string, make: () => Promise<Buffer>): Promise<Buffer> {
	try {
		return await readFile(file);
	} catch {
		const bytes = await make();
		await mkdir(path.dirname(file), { recursive: true });
		// Whole or not at all: a reader never finds half a file (two runs may make it at once, and a
		// run stopped while writing one leaves none behind).
		const partial = `${file}.${process.pid}.partial`;
		await writeFile(partial, bytes);
		await rename(partial, file);
		return bytes;
	}
}
