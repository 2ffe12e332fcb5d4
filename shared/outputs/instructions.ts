/**
 * The instruction a model gets for each output kind and language, and the repair request after a
 * result that did not pass validation (./validate.ts). The wording is one place so that the model
 * emulator can recognise which output a request asks for (`readInstruction`), as a real model
 * would from the text.
 */
import type { Output } from "./spec";

const INSTRUCTIONS = {
	alt_text:
		'Write alt text for this image: one sentence of at most 125 characters saying what it shows, without a lead-in such as "image of" or "picture of". Answer with the alt text only.',
	tags: "List 1 to 20 tags for this image: lowercase words or short phrases, separated by commas. Answer with the tags only.",
	title: "Write a title for this image of at most 80 characters. Answer with the title only.",
} as const;

const SCHEMA_LEAD =
	"Describe this image as one JSON value that satisfies this JSON Schema; answer with the JSON only: ";
const LANGUAGE_LEAD = "Write the answer in the language with BCP 47 tag ";
const REPAIR_LEAD = "Your previous answer was not accepted: ";

/**
 * The prompt for a job: its own prompt (or the service's default for `caption`), the output's
 * instruction, and the language. `question` is false only for the plain default caption, which
 * models with a captioning skill (moondream) answer with that skill.
 */
export function instructionFor(
	output: Output,
	language: string | null,
	prompt: string,
	question: boolean,
): { prompt: string; question: boolean } {
	const parts: string[] = [];
	if (output === "caption") parts.push(prompt);
	else {
		if (question) parts.push(prompt);
		parts.push(
			typeof output === "string" ? INSTRUCTIONS[output] : `${SCHEMA_LEAD}${JSON.stringify(output.json_schema)}`,
		);
	}
	if (language !== null) parts.push(`${LANGUAGE_LEAD}"${language}".`);
	return { prompt: parts.join("\n\n"), question: question || output !== "caption" || language !== null };
}

/** The second request after a rejected answer: the first, what came back and what was wrong with it. */
export function repairPrompt(prompt: string, answer: string, reason: string): string {
	return `${prompt}\n\n${REPAIR_LEAD}${reason}. It was:\n${answer.slice(0, 2000)}\nAnswer again, fixing that.`;
}

/** What a prompt made here asks for, for the emulator: the output, the language and whether it is a repair. */
export function readInstruction(prompt: string): { output: Output; language: string | null; repair: boolean } | null {
	const language = new RegExp(`${LANGUAGE_LEAD}"([^"]+)"`).exec(prompt)?.[1] ?? null;
	const repair = prompt.includes(REPAIR_LEAD);
	const schemaAt = prompt.indexOf(SCHEMA_LEAD);
	if (schemaAt >= 0) {
		const rest = prompt.slice(schemaAt + SCHEMA_LEAD.length).split("\n\n")[0] ?? "";
		try {
			return { output: { json_schema: JSON.parse(rest) }, language, repair };
		} catch {
			return null;
		}
	}
	for (const [kind, text] of Object.entries(INSTRUCTIONS)) {
		if (prompt.includes(text)) return { output: kind as keyof typeof INSTRUCTIONS, language, repair };
	}
	return language === null ? null : { output: "caption", language, repair };
}
