/** D1 stores times as epoch milliseconds; the API shows them as ISO 8601 (UTC), null staying null. */
export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
