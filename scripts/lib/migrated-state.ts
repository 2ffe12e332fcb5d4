/**
 * Local states whose D1 migrations need not be looked at again. Applying the migrations to an
 * empty database costs about 4 s of CPU (all in one `wrangler d1 execute`, scripts/lib/wrangler.ts;
 * 30 s one runtime per migration, as `wrangler d1 migrations apply` does); finding them applied,
 * about 4.5 s of CPU and 4 s of waiting, on every start of `npm run dev`.
 *
 * - The stacks that start on fresh state (the Node tests boot about ten) start from a template kept
 *   under node_modules/.cache, named by what it was made from (migrationsKey: the migrations, the
 *   D1 binding, wrangler's version, the code that applies them), migrated once: each fresh state
 *   directory is a copy of it.
 * - Such a copy, and any state `npm run dev` has migrated itself, carries a mark with that name:
 *   `npm run dev` skips its migration step on a state whose mark names the migrations there are
 *   now (and whose D1 database is still there), and runs it on any other state.
 */
import { createHash } from "node:crypto";
import {
	cpSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import path from "node:path";
import { readConfig } from "./configs.ts";
import { localD1Databases, migrateLocal, root } from "./wrangler.ts";

const CACHE = path.join(root, "node_modules/.cache/r2-captions-migrated-state");

/**
 * The name of the migrations as a local state gets them: their names and text, the D1 binding (its
 * file is named by the database), wrangler, and the code that applies them. It names the template,
 * and the mark of every state migrated to them.
 */
export function migrationsKey(): string {
	const hash = createHash("sha256");
	const d1 = readConfig("wrangler.jsonc").d1_databases ?? [];
	hash.update(JSON.stringify(d1));
	hash.update(readFileSync(path.join(root, "node_modules/wrangler/package.json")));
	// The code that applies them (migrateLocal): a template it made differently is not reused.
	hash.update(readFileSync(path.join(root, "scripts/lib/wrangler.ts")));
	for (const binding of d1) {
		if (!binding.migrations_dir) continue;
		const dir = path.join(root, binding.migrations_dir);
		for (const name of readdirSync(dir).sort()) hash.update(name).update(readFileSync(path.join(dir, name)));
	}
	return hash.digest("hex").slice(0, 16);
}

/** The template's directory, made (once, whoever asks first) if it is not there yet. */
export async function migratedTemplate(): Promise<string> {
	const dir = path.join(CACHE, migrationsKey());
	if (existsSync(dir)) return dir;
	mkdirSync(CACHE, { recursive: true });
	const building = mkdtempSync(`${dir}-building-`);
	try {
		await migrateLocal(building);
		// Whole or not at all: a process that lost the race to make it keeps the winner's.
		renameSync(building, dir);
	} catch (err) {
		if (!existsSync(dir)) throw err;
	} finally {
		rmSync(building, { recursive: true, force: true });
	}
	return dir;
}

/** The mark of a migrated state: the name of the migrations it was migrated to (migrationsKey). */
export const MIGRATED_MARK = "r2-captions-migrated";

/**
 * Marks `persistTo` as migrated to the migrations named `key`: taken before they were applied, so
 * that a migration added meanwhile (a `git pull` during the step) is not marked as applied.
 */
export function markMigrated(persistTo: string, key: string): void {
	writeFileSync(path.join(persistTo, MIGRATED_MARK), key);
}

/** Fills the empty directory `persistTo` with a copy of the migrated template, marked as migrated. */
export async function seedMigratedState(persistTo: string): Promise<void> {
	const template = await migratedTemplate();
	cpSync(template, persistTo, { recursive: true });
	markMigrated(persistTo, path.basename(template));
}

/**
 * Whether `persistTo` was migrated to the migrations named `key` (migrationsKey: those there are
 * now, none added or changed since, nor wrangler or the D1 binding) and still has its D1 database:
 * their step has nothing to apply. Migrations are only ever applied, never taken back, so a state
 * used since then is still migrated.
 */
export function markedMigrated(persistTo: string, key: string): boolean {
	const mark = path.join(persistTo, MIGRATED_MARK);
	return existsSync(mark) && localD1Databases(persistTo).length > 0 && readFileSync(mark, "utf8") === key;
}
