/**
 * Where write-back puts a result and how its own writes are recognised: the sidecar's key (the
 * image's key without its extension, `.txt` or `.json`), the custom metadata key every object
 * written back carries (`caption-job`, the job's id), and which keys look like sidecars (never
 * captioned as images, whoever put them there).
 */

/** Custom metadata on every object write-back writes (a sidecar, a rewritten image): the job's id. */
export const WRITE_BACK_MARK = "caption-job";
/** Custom metadata a `metadata` write-back puts the result's text in. */
export const CAPTION_METADATA = "caption";

export const SIDECAR_EXTENSIONS = [".txt", ".json"] as const;

/** The sidecar of `key`: the last path segment's extension replaced (or, without one, added). */
export function sidecarKey(key: string, json: boolean): string {
	const slash = key.lastIndexOf("/");
	const dot = key.lastIndexOf(".");
	const stem = dot > slash + 1 ? key.slice(0, dot) : key;
	return `${stem}${json ? ".json" : ".txt"}`;
}

/** Why a sidecar-like key is not captioned (the API's 400 for it, a job's failure). */
export const SIDECAR_NAME =
	"The key ends in .txt or .json, the names of sidecars: such objects are never captioned as images.";

/** A key that names a sidecar, not an image: a notification for it makes no job, the API refuses it. */
export const isSidecarLike = (key: string): boolean =>
	SIDECAR_EXTENSIONS.some((ext) => key.toLowerCase().endsWith(ext));
