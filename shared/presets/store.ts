/** D1 access for presets: the status Worker's routes and the consumer's lookup by key. */
import { parseRow, parseRows } from "../d1-rows";
import { longestMatch, PresetRow } from "./schema";

/** Presets the service keeps: the consumer reads them all once per batch, so there are not many. */
export const MAX_PRESETS = 1000;
/** Presets one API key may make, so that no tenant takes the service's places from the others. */
export const MAX_PRESETS_PER_KEY = 50;

export async function allPresets(db: D1Database): Promise<PresetRow[]> {
	return db.prepare("SELECT * FROM presets ORDER BY name LIMIT ?").bind(MAX_PRESETS).all().then(parseRows(PresetRow));
}

export async function getPreset(db: D1Database, name: string): Promise<PresetRow | null> {
	return db.prepare("SELECT * FROM presets WHERE name = ?").bind(name).first().then(parseRow(PresetRow));
}

/** The longest-prefix preset of `key`, read fresh (the upload endpoint; the consumer uses PresetCache). */
export async function presetForKey(db: D1Database, key: string): Promise<PresetRow | null> {
	return db
		.prepare("SELECT * FROM presets WHERE substr(?1, 1, length(prefix)) = prefix ORDER BY length(prefix) DESC LIMIT 1")
		.bind(key)
		.first()
		.then(parseRow(PresetRow));
}

/** The presets read once and matched many times (one consumer batch). */
export class PresetCache {
	private loaded: Promise<PresetRow[]> | null = null;
	constructor(private readonly db: D1Database) {}

	async forKey(key: string): Promise<PresetRow | null> {
		this.loaded ??= allPresets(this.db);
		return longestMatch(await this.loaded, key);
	}
}
