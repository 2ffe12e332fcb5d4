/**
 * BENCHMARK ONLY — the stages of a caption that the meter (meter.ts) files each round trip under,
 * shared with the Node side of the bench (bench/batches.ts) that adds them up.
 */
export const STAGES = ["claim", "options", "read", "prepare", "admission", "pacing", "model", "finish"] as const;
export type Stage = (typeof STAGES)[number];
