/**
 * The retention sweep (the consumer's cron, and `npm run dev`'s periodic sweep): rows that ended
 * more than their retention ago are written to the archive in R2 and then deleted, kind by kind
 * (retention-kinds.ts). Like the recovery sweeps it works in pages within a time budget and goes on
 * from a cursor (`sweep_cursors`, `retention:<kind>`) the next run; unlike them it must not run
 * twice at once (two runs would archive the same rows into two parts), so a run first takes a
 * lease (`sweep_cursors`, `retention:lease`) and a run that finds it held does nothing.
 *
 * Each part is recorded in `retention_parts` before it is written to R2, and the record goes in
 * the transaction that deletes its rows: a run that stops in between leaves the record, and the
 * next run writes that part again (same rows, same name) before it deletes them.
 */
import { z } from "zod";
import { randomToken } from "../../shared/ids";
import { log } from "../../shared/log";
import type { RetentionReport } from "../../shared/recovery";
import { archiveDay, partName, writePart } from "./archive";
import type { ConsumerSettings } from "./config";
import { RETENTION_KINDS, type RetentionKind, retentionKinds } from "./retention-kinds";

const DAY_MS = 86_400_000;
/** Wall time one run may spend, shared by the kinds. */
export const RETENTION_BUDGET_MS = 30_000;
const LEASE = "retention:lease";

export interface RetentionOptions {
	budgetMs?: number;
	/** Rows looked at per query, for every kind (tests use small pages to make many parts). */
	pageSize?: number;
}

interface Run {
	db: D1Database;
	bucket: R2Bucket;
	archive: boolean;
	now: number;
	options: RetentionOptions;
	/** D1 rows written so far (deleted rows and their index entries count; D1 bills them). */
	rowsWritten: number;
}

const Pending = z.object({ name: z.string(), ids: z.string() });
const Ids = z.array(z.string()).min(1);
const CursorRow = z.object({ id: z.string() });

const cursorName = (kind: RetentionKind) => `retention:${kind.name}`;

function saveCursor(run: Run, kind: RetentionKind, after: string | null): D1PreparedStatement {
	return after === null
		? run.db.prepare("DELETE FROM sweep_cursors WHERE name = ?1").bind(cursorName(kind))
		: run.db
				.prepare(
					`INSERT INTO sweep_cursors (name, created_at, id, updated_at) VALUES (?1, 0, ?2, ?3)
					ON CONFLICT (name) DO UPDATE SET id = excluded.id, updated_at = excluded.updated_at`,
				)
				.bind(cursorName(kind), after, run.now);
}

/** Writes a part's rows to the archive (again, if it was written before). */
async function archivePart(run: Run, kind: RetentionKind, name: string, ids: string[]): Promise<void> {
	const lines = await kind.read(run.db, ids);
	if (lines.length > 0) await writePart(run.bucket, name, lines);
}

/**
 * Deletes the rows, clears the part's record and moves the cursor, in one transaction; returns how
 * many of the kind's rows it deleted (the ids the first delete returned, not its `meta.changes`,
 * which counts the rows its triggers changed as well).
 */
async function commit(
	run: Run,
	kind: RetentionKind,
	ids: string[],
	part: string | null,
	after: string | null,
): Promise<number> {
	const clear = part === null ? [] : [run.db.prepare("DELETE FROM retention_parts WHERE name = ?1").bind(part)];
	const results = await run.db.batch([...kind.deletes(run.db, ids), ...clear, saveCursor(run, kind, after)]);
	for (const result of results) run.rowsWritten += result.meta.rows_written;
	return results[0]?.results.length ?? 0;
}

/** Archives (unless ARCHIVE=off) and deletes one part's rows. */
async function removeRows(
	run: Run,
	kind: RetentionKind,
	rows: { id: string; created_at: number }[],
	after: string | null,
): Promise<number> {
	const ids = rows.map((r) => r.id);
	const first = rows[0];
	if (!run.archive || !first) return commit(run, kind, ids, null, after);
	const name = partName(kind.name, first.created_at, first.id, ids.at(-1) ?? first.id);
	const recorded = await run.db
		.prepare("INSERT INTO retention_parts (name, kind, ids, created_at) VALUES (?1, ?2, ?3, ?4)")
		.bind(name, kind.name, JSON.stringify(ids), run.now)
		.run();
	run.rowsWritten += recorded.meta.rows_written;
	await archivePart(run, kind, name, ids);
	return commit(run, kind, ids, name, after);
}

interface KindResult {
	deleted: number;
	parts: number;
	truncated: boolean;
}

async function sweepKind(run: Run, kind: RetentionKind, cutoff: number, deadline: number): Promise<KindResult> {
	const result: KindResult = { deleted: 0, parts: 0, truncated: false };
	let after = await run.db
		.prepare("SELECT id FROM sweep_cursors WHERE name = ?1")
		.bind(cursorName(kind))
		.first()
		.then((row) => (row === null ? "" : CursorRow.parse(row).id));
	// A part a previous run recorded but did not finish: the same rows under the same name, first.
	const pending = await run.db
		.prepare("SELECT name, ids FROM retention_parts WHERE kind = ?1")
		.bind(kind.name)
		.first()
		.then((row) => (row === null ? null : Pending.parse(row)));
	if (pending) {
		const ids = Ids.parse(JSON.parse(pending.ids));
		await archivePart(run, kind, pending.name, ids);
		// The cursor stays where it was: rows behind the part that became eligible since are still to come.
		result.deleted += await commit(run, kind, ids, pending.name, after === "" ? null : after);
		result.parts++;
	}

	const pageSize = run.options.pageSize ?? kind.pageSize;
	const partRows = Math.min(kind.partRows, pageSize);
	for (;;) {
		const page = await kind.scan(run.db, after, cutoff, pageSize);
		const eligible = page.filter((r) => r.eligible === 1);
		const day = eligible[0] && archiveDay(eligible[0].created_at);
		// A part holds rows of one day (they are contiguous: ids sort by creation time).
		const part = eligible.filter((r) => archiveDay(r.created_at) === day).slice(0, partRows);
		const whole = part.length === eligible.length;
		const atEnd = whole && page.length < pageSize;
		const next = atEnd ? null : ((whole ? page.at(-1)?.id : part.at(-1)?.id) ?? after);
		if (part.length > 0) {
			result.deleted += await removeRows(run, kind, part, next);
			if (run.archive) result.parts++;
		} else {
			await saveCursor(run, kind, next).run();
		}
		if (next === null) break;
		after = next;
		if (Date.now() >= deadline) {
			result.truncated = true;
			break;
		}
	}
	return result;
}

async function takeLease(db: D1Database, token: string, until: number, wallNow: number): Promise<boolean> {
	const row = await db
		.prepare(
			`INSERT INTO sweep_cursors (name, created_at, id, updated_at) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (name) DO UPDATE SET created_at = excluded.created_at, id = excluded.id, updated_at = excluded.updated_at
			WHERE sweep_cursors.created_at <= ?4
			RETURNING id`,
		)
		.bind(LEASE, until, token, wallNow)
		.first();
	return row !== null;
}

/**
 * One retention run at time `now` (rows that ended before `now` minus their kind's days go).
 * Returns what it deleted, or `skipped` when another run holds the lease.
 */
export async function sweepRetention(
	env: ConsumerEnv,
	settings: ConsumerSettings,
	now = Date.now(),
	options: RetentionOptions = {},
): Promise<RetentionReport> {
	const budget = options.budgetMs ?? RETENTION_BUDGET_MS;
	const token = randomToken();
	const started = Date.now();
	const report: RetentionReport = {
		jobs_deleted: 0,
		webhook_events_deleted: 0,
		batches_deleted: 0,
		parts_archived: 0,
		rows_written: 0,
		truncated: false,
		skipped: false,
	};
	// The lease outlives the budget by a minute: a run cut off mid-page still ends before another starts.
	if (!(await takeLease(env.DB, token, started + budget + 60_000, started))) return { ...report, skipped: true };
	const archive = settings.ARCHIVE === "on";
	const run: Run = { db: env.DB, bucket: env.ARCHIVE_BUCKET, archive, now, options, rowsWritten: 0 };
	try {
		for (const [i, name] of RETENTION_KINDS.entries()) {
			const kind = retentionKinds[name];
			const deadline = started + (budget * (i + 1)) / RETENTION_KINDS.length;
			const swept = await sweepKind(run, kind, now - kind.days(settings) * DAY_MS, deadline);
			report[`${name}_deleted`] += swept.deleted;
			report.parts_archived += swept.parts;
			report.truncated ||= swept.truncated;
		}
	} finally {
		await env.DB.prepare("DELETE FROM sweep_cursors WHERE name = ?1 AND id = ?2").bind(LEASE, token).run();
		report.rows_written = run.rowsWritten;
	}
	const deleted = report.jobs_deleted + report.webhook_events_deleted + report.batches_deleted;
	if (deleted > 0) log("info", "retention_swept", { ...report });
	return report;
}
