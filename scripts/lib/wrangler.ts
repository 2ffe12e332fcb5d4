/**
 * The repository's wrangler, run by the repository's Node (scripts run under Node 22 through npm;
 * a global wrangler or Node 20 would not do).
 */
import { type SpawnOptions, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";

export const root = path.join(import.meta.dirname, "../..");

/** The repository's wrangler. */
const wranglerBin = path.join(root, "node_modules/wrangler/bin/wrangler.js");

/**
 * wrangler's API in this process, loaded on first use with require: imported as an ES module, its
 * 15 MB CommonJS bundle is first scanned by Node for module syntax and for its export names, half a
 * second of CPU more at each start of a script that uses it.
 */
export const wranglerApi = () => createRequire(import.meta.url)("wrangler") as typeof import("wrangler");

/** Default local state, the same directory a plain `wrangler dev` or `wrangler d1 … --local` uses. */
export const defaultPersistDir = path.join(root, ".wrangler/state");

/** D1 database name shared by every Worker (the `database_name` of their DB binding). */
export const databaseName = "r2-captions";

/**
 * Starts wrangler with `args`; the caller owns the child (signals, exit). R2C_WRANGLER_BIN names an
 * executable started in its place (the deploy tests' stand-in, test/node/support/fake-wrangler.sh).
 */
export function spawnWrangler(args: string[], options: SpawnOptions = {}) {
	const standIn = process.env.R2C_WRANGLER_BIN;
	if (standIn) return spawn(standIn, args, { cwd: root, ...options });
	return spawn(process.execPath, [wranglerBin, ...args], { cwd: root, ...options });
}

export interface RunResult {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs wrangler to completion, echoing its output when `echo` is set, and returns what it printed. */
export function runWrangler(
	args: string[],
	options: { echo?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
	return new Promise((resolve, reject) => {
		const child = spawnWrangler(args, {
			stdio: ["ignore", "pipe", "pipe"],
			// CI=1: never stop at a confirmation prompt (for example before applying migrations).
			env: { ...process.env, CI: "1", ...options.env },
		});
		let stdout = "";
		let stderr = "";
		child.stdout?.on("data", (chunk: Buffer) => {
			stdout += chunk;
			if (options.echo) process.stdout.write(chunk);
		});
		child.stderr?.on("data", (chunk: Buffer) => {
			stderr += chunk;
			if (options.echo) process.stderr.write(chunk);
		});
		child.on("error", reject);
		child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
	});
}

/** The migrations folder of the D1 binding, and the table wrangler records applied migrations in. */
const migrationsDir = path.join(root, "migrations");
const migrationsTable = "d1_migrations";

/**
 * Every migration and its record in one SQL file, as `wrangler d1 migrations apply` builds each
 * (the migration's text, then `INSERT INTO d1_migrations (name) values ('<file>')`), after the
 * statement with which wrangler creates its table.
 */
export function allMigrationsSql(): string {
	const files = readdirSync(migrationsDir)
		.filter((name) => name.endsWith(".sql"))
		.sort();
	const parts = [
		`CREATE TABLE IF NOT EXISTS "${migrationsTable}"(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`,
	];
	for (const name of files) {
		parts.push(
			`${readFileSync(path.join(migrationsDir, name), "utf8")}\nINSERT INTO "${migrationsTable}" (name)\nvalues ('${name.replace(/'/g, "''")}');`,
		);
	}
	return parts.join("\n");
}

/**
 * Applies every migration to a local state that has no D1 database yet, in one `wrangler d1 execute`:
 * `wrangler d1 migrations apply` starts a local runtime for each migration (about 0.8 CPU-seconds
 * each, 27 s for 32 on an empty database), this one runtime for all. The statements are the ones
 * wrangler would run, in one D1 batch: all are applied, or none. Returns false when that batch
 * failed (nothing applied), for the caller to apply them one by one instead.
 */
async function migrateEmptyLocal(persistTo: string): Promise<boolean> {
	const dir = mkdtempSync(path.join(tmpdir(), "r2-captions-migrations-"));
	try {
		const file = path.join(dir, "all.sql");
		writeFileSync(file, allMigrationsSql());
		const args = ["d1", "execute", databaseName, "--local", "--persist-to", persistTo, "--file", file, "--yes"];
		const result = await runWrangler([...args, "-c", "wrangler.jsonc"]);
		return result.code === 0;
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

/** Where wrangler keeps the local D1 databases of a state directory. */
export const localD1Dir = (persistTo: string): string => path.join(persistTo, "v3", "d1");

/** The local D1 database files of a state directory (one per database; none before its first use). */
export function localD1Databases(persistTo: string): string[] {
	const dir = path.join(localD1Dir(persistTo), "miniflare-D1DatabaseObject");
	if (!existsSync(dir)) return [];
	return readdirSync(dir)
		.filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")
		.map((name) => path.join(dir, name));
}

/**
 * Applies the D1 migrations to local state in `persistTo` (what `npm run dev` serves from): on a
 * state with no D1 database yet (a fresh clone) all at once, otherwise (or if that fails) with
 * `wrangler d1 migrations apply`, which applies those its table does not list.
 */
export async function migrateLocal(persistTo: string): Promise<void> {
	// Where wrangler keeps local D1 databases under a persistence directory: none there, none made.
	if (!existsSync(localD1Dir(persistTo)) && (await migrateEmptyLocal(persistTo))) {
		console.log("D1 migrations applied (local).");
		return;
	}
	const result = await runWrangler([
		"d1",
		"migrations",
		"apply",
		databaseName,
		"--local",
		"--persist-to",
		persistTo,
		// The production config: its local copies bind the same database, so they share this state.
		"-c",
		"wrangler.jsonc",
	]);
	if (result.code !== 0) {
		process.stderr.write(result.stdout + result.stderr);
		throw new Error(`applying the D1 migrations locally failed (wrangler exited ${result.code})`);
	}
	const upToDate = result.stdout.includes("No migrations to apply");
	console.log(upToDate ? "D1 schema is up to date (local)." : "D1 migrations applied (local).");
}
