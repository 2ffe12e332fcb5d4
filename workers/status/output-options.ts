/**
 * The output options as the API takes them (`output`, `language`, `write_back` in a body; the
 * `X-Caption-Output`, `X-Caption-Language` and `X-Caption-Write-Back` headers of an upload) and
 * the text forms the job, batch and preset rows store. A JSON Schema the validator cannot use is
 * refused here with a 400, not left to fail the job.
 */
import {
	Language,
	Output,
	OutputText,
	outputText,
	type WriteBack,
	WriteBackSetting,
	WriteBackText,
	writeBackText,
} from "../../shared/outputs/spec";
import { schemaProblem } from "../../shared/outputs/validate";
import { invalidParam, type ParamLocation } from "./api-error";

/** The body fields, shared by `POST /v1/jobs` and `POST /v1/batches`. */
export const outputBodyFields = {
	output: Output.optional(),
	language: Language.optional(),
	write_back: WriteBackSetting.optional(),
};

/** The upload headers, stored as the object's custom metadata `output`, `language`, `write-back`. */
export const outputHeaderFields = {
	"X-Caption-Output": OutputText.optional().meta({
		description: 'Stored as custom metadata `output`: `caption`, `alt_text`, `tags`, `title` or `{"json_schema":{…}}`.',
	}),
	"X-Caption-Language": Language.optional().meta({ description: "Stored as custom metadata `language` (BCP 47)." }),
	"X-Caption-Write-Back": WriteBackText.optional().meta({
		description: "Stored as custom metadata `write-back`: `sidecar` or `metadata`, optionally `:overwrite` or `:skip`.",
	}),
};

export interface OutputColumns {
	output: string | null;
	language: string | null;
	writeBack: string | null;
}

/** The text forms of the given options (null: not given), once the JSON Schema is known to be usable. */
export function outputColumns(
	given: { output?: Output; language?: string; write_back?: WriteBack },
	fields: { output: string; in: ParamLocation },
): OutputColumns {
	if (given.output !== undefined && typeof given.output !== "string") {
		const problem = schemaProblem(given.output.json_schema);
		if (problem !== null) throw invalidParam(fields.output, fields.in, `Not a usable JSON Schema: ${problem}`);
	}
	return {
		output: given.output === undefined ? null : outputText(given.output),
		language: given.language ?? null,
		writeBack: given.write_back === undefined ? null : writeBackText(given.write_back),
	};
}
