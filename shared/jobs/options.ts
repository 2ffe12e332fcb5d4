/**
 * Per-object caption options, in one place: how each is checked, where it comes from and in what
 * order (options given to `POST /v1/jobs` or a batch, then the object's R2 custom metadata
 * `prompt`, `max-tokens`, `callback-url`, `output`, `language`, `write-back`, so bucket uploads and
 * API uploads behave the same, then the longest matching preset, then the defaults), and the key
 * that tells uploads with different options apart. Invalid values fail the job, never vanish.
 */
import { z } from "zod";
import { decimalInt } from "../decimal-int";
import { toHex } from "../ids";
import type { ModelRequest } from "../models/types";
import { Language, type Output, OutputText, type WriteBack, WriteBackText } from "../outputs/spec";
import { schemaProblem } from "../outputs/validate";
import { JobFailure } from "./errors";

export const MAX_PROMPT_LENGTH = 2000;
export const MAX_TOKENS_LIMIT = 2048;

export const Prompt = z.string().trim().min(1).max(MAX_PROMPT_LENGTH);
/** In a JSON body: a number (no `true`, `"5"` or `[7]`, which coercion would take as 1, 5 and 7). */
export const MaxTokens = z.number().int().min(1).max(MAX_TOKENS_LIMIT);
/** In a header or custom metadata, where every value is text. */
export const MaxTokensText = decimalInt(1, MAX_TOKENS_LIMIT);
/** Longer URLs are refused everywhere (bodies, headers, metadata): no receiver needs one. */
export const MAX_CALLBACK_URL_LENGTH = 2048;
export const CallbackUrl = z.url({ protocol: /^https?$/ }).max(MAX_CALLBACK_URL_LENGTH);

/**
 * An output as stored (metadata, a preset, a job row) whose JSON Schema the validator can use: the
 * API refuses an unusable one, but an object written straight into the bucket may carry one, and
 * it fails the job before any model call, not on each answer.
 */
const UsableOutputText = OutputText.superRefine((output, ctx) => {
	if (typeof output === "string") return;
	const problem = schemaProblem(output.json_schema);
	if (problem !== null) ctx.addIssue({ code: "custom", message: `not a usable JSON Schema: ${problem}` });
});

/** Custom metadata keys, shared with the upload endpoint's headers. */
export const METADATA_KEYS = {
	prompt: "prompt",
	maxTokens: "max-tokens",
	callbackUrl: "callback-url",
	output: "output",
	language: "language",
	writeBack: "write-back",
} as const;

/**
 * A job's options once resolved: what the model chain is asked (`prompt`, `maxTokens`, and
 * `question`: the prompt came with the job, explicit or from metadata, rather than from the
 * defaults) and where the result is sent.
 */
export interface CaptionOptions extends Omit<ModelRequest, "keyId" | "jsonSchema" | "language"> {
	callbackUrl: string | null;
	output: Output;
	language: string | null;
	writeBack: WriteBack | null;
}

export interface OptionDefaults {
	prompt: string;
	maxTokens: number;
}

/** A job's explicit options, as its row stores them (null: not given; text forms, see ../outputs/spec.ts). */
export interface ExplicitOptions {
	prompt: string | null;
	max_tokens: number | null;
	callback_url: string | null;
	output?: string | null;
	language?: string | null;
	write_back?: string | null;
}

/** The options of the preset whose prefix is the longest that matches the object's key (stored like a job's). */
export type PresetOptions = Omit<ExplicitOptions, "callback_url">;

/** Each option: how it is checked, its column in the job row and its custom metadata key. */
const FIELDS = {
	prompt: { schema: Prompt, column: "prompt", metadata: METADATA_KEYS.prompt },
	maxTokens: { schema: MaxTokensText, column: "max_tokens", metadata: METADATA_KEYS.maxTokens },
	callbackUrl: { schema: CallbackUrl, column: "callback_url", metadata: METADATA_KEYS.callbackUrl },
	output: { schema: UsableOutputText, column: "output", metadata: METADATA_KEYS.output },
	language: { schema: Language, column: "language", metadata: METADATA_KEYS.language },
	writeBack: { schema: WriteBackText, column: "write_back", metadata: METADATA_KEYS.writeBack },
} as const;

/** The fields that existed before outputs: an object with none of the others keeps its old options key. */
const FIRST_FIELDS: readonly Field[] = ["prompt", "maxTokens", "callbackUrl"];

type Field = keyof typeof FIELDS;
type Value<F extends Field> = z.output<(typeof FIELDS)[F]["schema"]>;

/** What an invalid value does: fail the job (resolving a job) or count as absent (a preview). */
type OnInvalid = "fail" | "ignore";

function checked<F extends Field>(
	field: F,
	value: string | number | null | undefined,
	where: string,
	onInvalid: OnInvalid,
): Value<F> | undefined {
	if (value === null || value === undefined) return undefined;
	const parsed = FIELDS[field].schema.safeParse(value);
	if (parsed.success) return parsed.data as Value<F>;
	if (onInvalid === "ignore") return undefined;
	throw new JobFailure(
		"invalid_options",
		`Invalid ${where} ${JSON.stringify(value)}: ${parsed.error.issues[0]?.message}`,
	);
}

/**
 * The one precedence of every option: explicit, then custom metadata, then the preset; undefined
 * when none gives it.
 */
function given<F extends Field>(
	field: F,
	job: ExplicitOptions,
	metadata: Record<string, string>,
	onInvalid: OnInvalid,
	preset: PresetOptions | null = null,
): Value<F> | undefined {
	const { column, metadata: key } = FIELDS[field];
	const fromPreset = preset !== null && column !== "callback_url" ? preset[column] : undefined;
	return (
		checked(field, job[column], column, onInvalid) ??
		checked(field, metadata[key], `${key} metadata`, onInvalid) ??
		checked(field, fromPreset, `preset ${column}`, onInvalid)
	);
}

/** Resolves a job's options: explicit job options, then custom metadata, then the preset, then defaults. */
export function resolveOptions(
	job: ExplicitOptions,
	metadata: Record<string, string>,
	defaults: OptionDefaults,
	preset: PresetOptions | null = null,
): CaptionOptions {
	const prompt = given("prompt", job, metadata, "fail", preset);
	return {
		prompt: prompt ?? defaults.prompt,
		question: prompt !== undefined,
		maxTokens: given("maxTokens", job, metadata, "fail", preset) ?? defaults.maxTokens,
		callbackUrl: given("callbackUrl", job, metadata, "fail") ?? null,
		output: given("output", job, metadata, "fail", preset) ?? "caption",
		language: given("language", job, metadata, "fail", preset) ?? null,
		writeBack: given("writeBack", job, metadata, "fail", preset) ?? null,
	};
}

/** A job's explicit options written as the custom metadata an upload writes of them (null columns left out). */
function metadataOfRow(job: ExplicitOptions): Record<string, string> {
	const metadata: Record<string, string> = {};
	for (const { column, metadata: key } of Object.values(FIELDS)) {
		const value = job[column];
		if (value !== null && value !== undefined) metadata[key] = String(value);
	}
	return metadata;
}

/**
 * The custom metadata a job's options resolve against: the object's, unless it is an upload's job
 * (a notification job, or one made in its place: `replaces`) whose upload wrote other caption
 * metadata than the object holds now (the same bytes uploaded again with other headers keep the
 * etag) and whose row holds every option that upload wrote (the job's options key says so). Then
 * its own: an earlier upload is captioned as it asked, not with the later upload's options for
 * those it left out.
 */
export async function metadataOfJob(
	job: ExplicitOptions & { source: string; options_key: string; replaces: string | null },
	metadata: Record<string, string>,
): Promise<Record<string, string>> {
	const uploads = job.source === "notification" || job.replaces !== null;
	if (!uploads || (await optionsKey(metadata)) === job.options_key) return metadata;
	const own = metadataOfRow(job);
	return (await optionsKey(own)) === job.options_key ? own : metadata;
}

/**
 * The prompt a job would run with, by the same precedence, before the job exists (a batch that
 * skips what is already captioned compares prompts): an invalid value counts as absent here; the
 * job itself fails on it.
 */
export function effectivePrompt(
	job: Pick<ExplicitOptions, "prompt">,
	metadata: Record<string, string>,
	defaultPrompt: string,
): string {
	const explicit: ExplicitOptions = { prompt: job.prompt, max_tokens: null, callback_url: null };
	return given("prompt", explicit, metadata, "ignore") ?? defaultPrompt;
}

/**
 * What tells apart two uploads of the same bytes (one etag) with different caption metadata: a
 * SHA-256 of the option values as stored ('' when the object has none of them). The upload
 * endpoint and the consumer compute it here from the same custom metadata, so a notification lands
 * on the job of the upload whose metadata the object holds (migrations/0007_limits.sql); the job of
 * an earlier upload of the same bytes with other options is sent by id
 * (workers/status/jobs/create.ts). The output options join the hashed values only when an object
 * has one, so objects stored before them keep their keys.
 */
export async function optionsKey(metadata: Record<string, string>): Promise<string> {
	const values: unknown[] = FIRST_FIELDS.map((field) => metadata[FIELDS[field].metadata] ?? null);
	const later = (Object.keys(FIELDS) as Field[]).filter((f) => !FIRST_FIELDS.includes(f));
	for (const field of later) {
		const key = FIELDS[field].metadata;
		if (metadata[key] !== undefined) values.push([key, metadata[key]]);
	}
	if (values.every((v) => v === null)) return "";
	const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(values)));
	return toHex(new Uint8Array(digest));
}
