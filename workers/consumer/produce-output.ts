/**
 * A job's output from the model chain: the request made for the job's output kind and language
 * (shared/outputs/instructions.ts), the answer checked (shared/outputs/validate.ts), and one repair
 * request telling the model what was wrong when it does not pass. A second rejection is the end:
 * the job fails `invalid_output` with the reason. The repair goes the same route as the first
 * request (the caption's lane, key and models), taking a rate-limit slot of its own.
 */
import type { CaptionOptions } from "../../shared/jobs/options";
import type { JobResultFields } from "../../shared/jobs/store";
import type { Captioning, ModelChain, Prepare, Route } from "../../shared/models/chain";
import type { ModelRequest } from "../../shared/models/types";
import { addUsage, type Usage, withUsage } from "../../shared/models/usage";
import { instructionFor, repairPrompt } from "../../shared/outputs/instructions";
import { outputText, writeBackText } from "../../shared/outputs/spec";
import { checkOutput, type Result } from "../../shared/outputs/validate";

/** What the model calls of the job spent: their time, and the tokens they reported (null: none did). */
interface Spent {
	inferenceMs: number;
	usage: Usage | null;
}

export type Produced =
	| ({ kind: "produced"; model: string; text: string; result: Result } & Spent)
	/** The answer failed validation, and so did the repair. */
	| ({ kind: "invalid"; model: string; message: string } & Spent)
	/** The JSON Schema itself could not be run: neither a repair nor a retry can help. */
	| ({ kind: "unusable"; model: string; message: string } & Spent)
	| Exclude<Captioning, { kind: "captioned" }>;

const spentOn = (call: Spent): Spent => ({ inferenceMs: call.inferenceMs, usage: call.usage });
const unusable = (reason: string) => `The job's output cannot be checked: ${reason}.`;

export async function produceOutput(
	chain: ModelChain,
	prepare: Prepare,
	options: CaptionOptions,
	keyId: string | null,
	route: Route,
): Promise<Produced> {
	const { output, language } = options;
	const instruction = instructionFor(output, language, options.prompt, options.question);
	const request: ModelRequest = {
		...instruction,
		maxTokens: options.maxTokens,
		keyId,
		jsonSchema: typeof output === "string" ? null : output.json_schema,
		language,
	};
	const first = await chain.caption(prepare, request, route);
	if (first.kind !== "captioned") return first;
	const checked = checkOutput(output, first.caption);
	if (!checked.ok && checked.unusable) {
		return { kind: "unusable", model: first.model, message: unusable(checked.reason), ...spentOn(first) };
	}
	if (checked.ok)
		return {
			kind: "produced",
			model: first.model,
			text: checked.text,
			result: checked.result,
			inferenceMs: first.inferenceMs,
			usage: first.usage,
		};

	const repair = { ...request, prompt: repairPrompt(request.prompt, first.caption, checked.reason), question: true };
	let second: Captioning;
	try {
		second = await chain.caption(prepare, repair, route);
	} catch (err) {
		// The repair never answered (its slot, the registry): the first answer's tokens still count.
		throw withUsage(err, first.usage);
	}
	const spent: Spent = {
		inferenceMs: first.inferenceMs + second.inferenceMs,
		usage: addUsage(first.usage, second.usage),
	};
	if (second.kind !== "captioned") return { ...second, ...spent };
	const again = checkOutput(output, second.caption);
	if (!again.ok && again.unusable)
		return { kind: "unusable", model: second.model, message: unusable(again.reason), ...spent };
	if (again.ok) return { kind: "produced", model: second.model, text: again.text, result: again.result, ...spent };
	return {
		kind: "invalid",
		model: second.model,
		message: `The model's answer did not pass validation, twice: ${again.reason}.`,
		...spent,
	};
}

/** The output options a job ran with, in the text forms its row stores. */
export function outputFields(options: CaptionOptions): Pick<JobResultFields, "output" | "language" | "writeBack"> {
	return {
		output: outputText(options.output),
		language: options.language,
		writeBack: options.writeBack === null ? null : writeBackText(options.writeBack),
	};
}
