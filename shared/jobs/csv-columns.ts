/**
 * The columns of a CSV results file, in order: the batch export (status Worker) and `r2c upload
 * --out results.csv` write the same header. Import-free, so the r2c command can load it in Node.
 */
export const CSV_COLUMNS = [
	"key",
	"status",
	"caption",
	"error_code",
	"error_message",
	"model",
	"prompt",
	"completed_at",
] as const;
