/**
 * The local side of `r2c upload`: which files the arguments name (folders walked recursively),
 * the object key each one gets, whether its bytes are an image (sniffed like the API does), and
 * its MD5, which is the ETag R2 gives a single-part upload of the same bytes.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { type ImageFormat, SNIFF_BYTES, sniffFormat } from "../shared/image/format.ts";
import { CliError } from "./errors.ts";

export interface LocalFile {
	/** As the user would name it: relative to the working directory when inside it. */
	path: string;
	key: string;
	size: number;
}

const display = (file: string) => {
	const relative = path.relative(process.cwd(), file);
	return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
};

const toKey = (prefix: string, relative: string) => prefix + relative.split(path.sep).join("/");

/**
 * The files under `inputs`, each with its key: `prefix` + the path inside a folder argument
 * (like `aws s3 cp --recursive`), or `prefix` + the name of a file argument. Sorted by key.
 */
export async function collectFiles(inputs: string[], prefix: string): Promise<LocalFile[]> {
	const files = new Map<string, LocalFile>();
	const add = (file: LocalFile) => {
		const other = files.get(file.key);
		if (other && other.path !== file.path) {
			throw new CliError(`${other.path} and ${file.path} would both be uploaded as ${file.key}`);
		}
		files.set(file.key, file);
	};
	for (const input of inputs) {
		const info = await stat(input).catch(() => null);
		if (info === null) throw new CliError(`no such file or folder: ${input}`);
		if (info.isFile()) {
			add({ path: display(path.resolve(input)), key: toKey(prefix, path.basename(input)), size: info.size });
			continue;
		}
		const root = path.resolve(input);
		for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
			if (!entry.isFile()) continue;
			const full = path.join(entry.parentPath, entry.name);
			const { size } = await stat(full);
			add({ path: display(full), key: toKey(prefix, path.relative(root, full)), size });
		}
	}
	return [...files.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The image format of the file's first bytes, or the reason it is not uploaded. */
export async function sniffFile(
	file: LocalFile,
): Promise<{ kind: "image"; format: ImageFormat } | { kind: "skip"; reason: string }> {
	if (file.size === 0) return { kind: "skip", reason: "empty file" };
	const handle = await open(file.path, "r");
	try {
		const head = new Uint8Array(SNIFF_BYTES);
		const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
		const format = sniffFormat(head.subarray(0, bytesRead));
		if (format) return { kind: "image", format };
		return { kind: "skip", reason: "not an image (its bytes are not JPEG, PNG, WebP, GIF or BMP)" };
	} finally {
		await handle.close();
	}
}

/** Hex MD5 of the file's bytes, streamed. */
export function md5File(file: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const hash = createHash("md5");
		createReadStream(file)
			.on("data", (chunk) => hash.update(chunk))
			.on("error", reject)
			.on("end", () => resolve(hash.digest("hex")));
	});
}
