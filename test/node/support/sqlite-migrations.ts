/**
 * The D1 migrations applied to SQLite in Node (node:sqlite), for the tests that make rows the way
 * the code did before a migration and read them after it.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";

const DIR = path.join(import.meta.dirname, "../../../migrations");

/** Applies to `db`, in order, the migrations whose file names `which` accepts. */
export function applyMigrations(db: DatabaseSync, which: (name: string) => boolean): DatabaseSync {
	for (const name of readdirSync(DIR).sort().filter(which)) db.exec(readFileSync(path.join(DIR, name), "utf8"));
	return db;
}

/** An in-memory database with the migrations `which` accepts applied. */
export const migrated = (which: (name: string) => boolean): DatabaseSync =>
	applyMigrations(new DatabaseSync(":memory:"), which);
