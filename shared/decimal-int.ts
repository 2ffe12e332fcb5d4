/** Integers that arrive as text: query parameters, headers, custom metadata. */
import { z } from "zod";

/**
 * An integer sent as text (a query parameter, a header): decimal digits only. `z.coerce.number()`
 * is JavaScript's `Number()`, which also reads `0x10`, `1e2`, `+3` and ` 3`, none of them the
 * `integer` the OpenAPI document promises.
 */
export const decimalInt = (min: number, max: number) =>
	z.preprocess(
		(value) => (typeof value === "string" && /^[0-9]{1,15}$/.test(value) ? Number(value) : value),
		z.number().int().min(min).max(max),
	);
