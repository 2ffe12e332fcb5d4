/**
 * scripts/lib/wrangler.ts's `migrateLocal` on a state with no D1 database (a fresh clone's first
 * `npm run dev`, and the migrated template the test stacks start from): every migration in one
 * `wrangler d1 execute` instead of a local runtime per migration. The database it leaves must be
 * the one the migrations make, with every migration recorded where `wrangler d1 migrations apply`
 * looks, so that wrangler's own apply then finds nothing to do; and once the state is marked
 * migrated (scripts/lib/migrated-state.ts), `npm run dev` skips the step while the mark holds.
 *
 * The state checked is a copy of the template (`migratedTemplate()`: `migrateLocal` on an empty
 * directory, made in this run by whichever file asks first, or kept from a run of the same
 * migrations, wrangler and `migrateLocal`), rather than one more `wrangler d1 execute` of its own.
 * `migrateLocal`'s own line on an empty state is checked by the restart test's first start.
 */
import { cpSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
	MIGRATED_MARK,
	markedMigrated,
	markMigrated,
	migratedTemplate,
	migrationsKey,
} from "../../scripts/lib/migrated-state.ts";
import { localD1Databases, localD1Dir, migrateLocal, root } from "../../scripts/lib/wrangler.ts";
import { migrated } from "./support/sqlite-migrations.ts";

const state = mkdtempSync(path.join(tmpdir(), "r2-captions-local-migrations-"));
beforeAll(async () => cpSync(await migratedTemplate(), state, { recursive: true }), 60_000);
afterAll(() => rmSync(state, { recursive: true, force: true }));

/** The local D1 database wrangler keeps under the state directory (one file per database). */
function localDatabase(): DatabaseSync {
	const [file] = localD1Databases(state);
	if (!file) throw new Error(`no local D1 database under ${localD1Dir(state)}`);
	return new DatabaseSync(file, { readOnly: true });
}

/** The schema the migrations made: every table, index, trigger and view with its SQL. */
const schema = (db: DatabaseSync) =>
	db
		.prepare(
			`SELECT type, name, tbl_name, sql FROM sqlite_master
			WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name <> 'd1_migrations'
			ORDER BY type, name`,
		)
		.all();

const migrationFiles = readdirSync(path.join(root, "migrations"))
	.filter((name) => name.endsWith(".sql"))
	.sort();

/** What migrateLocal said on the state (its one line on stdout). */
async function migrate(): Promise<string[]> {
	const log = vi.spyOn(console, "log").mockImplementation(() => {});
	try {
		await migrateLocal(state);
		return log.mock.calls.map((call) => String(call[0]));
	} finally {
		log.mockRestore();
	}
}

describe("the local D1 migrations of an empty state (a copy of the template)", () => {
	it("are applied at once: the schema every migration makes, each recorded as wrangler records it", () => {
		const db = localDatabase();
		expect(schema(db)).toEqual(schema(migrated(() => true)));
		expect(schema(db).length).toBeGreaterThan(30);
		const recorded = db.prepare("SELECT name FROM d1_migrations ORDER BY id").all();
		expect(recorded.map((row) => row.name)).toEqual(migrationFiles);
		db.close();
	});

	it("and `wrangler d1 migrations apply` then finds none left to apply", async () => {
		expect(await migrate()).toEqual(["D1 schema is up to date (local)."]);
	});

	it("once marked, `npm run dev` skips them: not without the mark, its D1 database, or for other migrations", () => {
		const key = migrationsKey();
		expect(markedMigrated(state, key)).toBe(false);
		markMigrated(state, key);
		expect(markedMigrated(state, key)).toBe(true);
		// The local databases deleted, the mark kept: migrated again.
		const d1 = localD1Dir(state);
		renameSync(d1, `${d1}-aside`);
		expect(markedMigrated(state, key)).toBe(false);
		renameSync(`${d1}-aside`, d1);
		expect(markedMigrated(state, key)).toBe(true);
		// Only the database's own file deleted: migrated again.
		const [file = ""] = localD1Databases(state);
		renameSync(file, `${file}-aside`);
		expect(markedMigrated(state, key)).toBe(false);
		renameSync(`${file}-aside`, file);
		expect(markedMigrated(state, key)).toBe(true);
		// Marked for other migrations (one added or changed since, another wrangler, another database): migrated again.
		writeFileSync(path.join(state, MIGRATED_MARK), "0000000000000000");
		expect(markedMigrated(state, key)).toBe(false);
	});
});
