/**
 * The command-line options of the npm scripts (node:util parseArgs). A mistyped option
 * (`npm run deploy -- --dry-run`) ends the script with one line, what was wrong, the options it
 * takes and a hint where one helps, and exit code 1, not parseArgs' TypeError and stack trace.
 */
import { type ParseArgsConfig, parseArgs } from "node:util";

/** What `parseArgs(config)` answers. */
export type Parsed<T extends ParseArgsConfig> = ReturnType<typeof parseArgs<T>>;

/** The options of `config` as a user types them: `--port <value>, --remote-ai`. */
export function optionList(config: ParseArgsConfig): string {
	const names = Object.entries(config.options ?? {}).map(([name, option]) =>
		option.type === "string" ? `--${name} <value>` : `--${name}`,
	);
	return names.length > 0 ? `the options are ${names.join(", ")}` : "it takes no options";
}

/**
 * The one line that reports a parseArgs error of `script` (e.g. `npm run dev`), or null when
 * `err` is not one. `hints` adds a sentence for an option people try (`--dry-run` → use --print).
 */
export function usageError(
	script: string,
	config: ParseArgsConfig,
	err: unknown,
	hints: Record<string, string> = {},
): string | null {
	if (!(err instanceof TypeError) || !("code" in err) || typeof err.code !== "string") return null;
	if (!err.code.startsWith("ERR_PARSE_ARGS_")) return null;
	// Node's first sentence names the option ("Unknown option '--prot'"); the rest is about `--`.
	const [what = err.message] = err.message.split(". ");
	const option = /'(-[^' ]+)/.exec(what)?.[1];
	const hint = option === undefined ? undefined : hints[option];
	return `${script}: ${what}; ${optionList(config)}${hint ? ` (${hint})` : ""}`;
}

/** parseArgs(config), or on a bad option the usage line on stderr and exit code 1. */
export function scriptArgs<T extends ParseArgsConfig>(
	script: string,
	config: T,
	hints: Record<string, string> = {},
): Parsed<T> {
	try {
		return parseArgs(config);
	} catch (err) {
		const line = usageError(script, config, err, hints);
		if (line === null) throw err;
		process.stderr.write(`${line}\n`);
		process.exit(1);
	}
}
