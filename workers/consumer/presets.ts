/**
 * The presets one consumer batch resolves its jobs' options with: read from D1 once per batch (a
 * batch has one model chain, so the chain keys the cache), matched per job by longest prefix.
 */
import type { ModelChain } from "../../shared/models/chain";
import { PresetCache } from "../../shared/presets/store";

const perBatch = new WeakMap<ModelChain, PresetCache>();

export function batchPresets(chain: ModelChain, db: D1Database): PresetCache {
	let cache = perBatch.get(chain);
	if (!cache) {
		cache = new PresetCache(db);
		perBatch.set(chain, cache);
	}
	return cache;
}
