/**
 * The columns of a CSV results file, in order: the batch export (status Worker) and `r2c upload
 * --out results.csv` write the same header and the same cells. Import-free, so the r2c command can
 * load it in Node.
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

/**
 * A text cell as a spreadsheet may open it safely: one that begins with `=`, `+`, `-`, `@`, a tab or
 * a carriage return is read as a formula by Excel, LibreOffice and Google Sheets (OWASP "CSV
 * injection"), so it gets a leading `'`, which they show as text. A caption or key is user data.
 */
export const spreadsheetSafe = (value: string): string => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);
