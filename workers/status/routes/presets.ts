/**
 * Presets: `POST /v1/presets`, `GET /v1/presets`, `GET` and `DELETE /v1/presets/{name}`. A preset
 * gives the options of every object under its prefix (the longest matching prefix wins; explicit
 * options and object metadata override it field by field). A key limited to a prefix manages and
 * sees only presets inside it; any other is answered as if it did not exist.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { parseRow } from "../../../shared/d1-rows";
import { CreatePresetBody, Preset, PresetName, PresetRow, presetRow, toPreset } from "../../../shared/presets/schema";
import { allPresets, getPreset, MAX_PRESETS, MAX_PRESETS_PER_KEY } from "../../../shared/presets/store";
import { ApiError, notFound } from "../api-error";
import type { AppEnv } from "../app-env";
import { type Principal, principalKeyId, scopePrefix } from "../auth/authorisation";
import { outputColumns } from "../output-options";
import { authenticated, errors, json } from "../responses";
import { validationHook } from "../validation";

const PresetList = z.object({ data: z.array(Preset) }).meta({ id: "PresetList" });
const NameParams = z.object({ name: PresetName });
const Count = z.object({ n: z.number() });

/** Why a create inserted nothing: a cap (the key's, then the service's), else the name or prefix taken. */
async function refusal(db: D1Database, keyId: string | null, name: string, prefix: string): Promise<ApiError> {
	const count = (sql: string, ...binds: unknown[]) =>
		db
			.prepare(sql)
			.bind(...binds)
			.first()
			.then(parseRow(Count))
			.then((r) => r?.n ?? 0);
	if (
		keyId !== null &&
		(await count("SELECT count(*) AS n FROM presets WHERE key_id = ?", keyId)) >= MAX_PRESETS_PER_KEY
	) {
		const message = `An API key keeps at most ${MAX_PRESETS_PER_KEY} presets: delete one of this key's first`;
		return new ApiError(409, "too_many_presets", message);
	}
	if ((await count("SELECT count(*) AS n FROM presets")) >= MAX_PRESETS) {
		return new ApiError(409, "too_many_presets", `The service keeps at most ${MAX_PRESETS} presets: delete one first`);
	}
	return new ApiError(409, "preset_exists", `A preset named ${name} or for the prefix ${prefix} exists already`);
}

/** A preset is the caller's to see when its whole prefix is inside the caller's scope. */
const visible = (principal: Principal, prefix: string) => prefix.startsWith(scopePrefix(principal) ?? "");

const createPresetRoute = createRoute({
	method: "post",
	path: "/v1/presets",
	operationId: "createPreset",
	summary: "Create a preset for the objects under a prefix",
	description:
		"Objects uploaded or notified under `prefix` use the preset whose prefix is the longest that matches; explicit options and the object's metadata override it field by field. A key limited to a prefix may only create presets inside it. Names and prefixes are unique (`409 preset_exists`).",
	security: authenticated,
	request: { body: { required: true, content: { "application/json": { schema: CreatePresetBody } } } },
	responses: { 201: json(Preset, "The preset"), ...errors(400, 401, 404, 409, 415) },
});

const listPresetsRoute = createRoute({
	method: "get",
	path: "/v1/presets",
	operationId: "listPresets",
	summary: "List the presets the caller may see, by name",
	security: authenticated,
	responses: { 200: json(PresetList, `The presets (at most ${MAX_PRESETS})`), ...errors(401) },
});

const getPresetRoute = createRoute({
	method: "get",
	path: "/v1/presets/{name}",
	operationId: "getPreset",
	summary: "Get a preset",
	security: authenticated,
	request: { params: NameParams },
	responses: { 200: json(Preset, "The preset"), ...errors(400, 401, 404) },
});

const deletePresetRoute = createRoute({
	method: "delete",
	path: "/v1/presets/{name}",
	operationId: "deletePreset",
	summary: "Delete a preset (jobs already made keep their options)",
	security: authenticated,
	request: { params: NameParams },
	responses: { 200: json(Preset, "The deleted preset"), ...errors(400, 401, 404) },
});

export const presetRoutes = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })
	.openapi(createPresetRoute, async (c) => {
		const body = c.req.valid("json");
		const principal = c.get("principal");
		if (!visible(principal, body.prefix)) {
			throw new ApiError(404, "not_found", `The prefix ${body.prefix} is not visible to this key`);
		}
		outputColumns(body, { output: "output", in: "body" });
		const row = presetRow(body, principalKeyId(principal), Date.now());
		// The caps are checked in the insert itself: concurrent creates of one key cannot pass them.
		const inserted = await c.env.DB.prepare(
			`INSERT INTO presets (name, prefix, output, prompt, language, max_tokens, write_back, key_id, created_at)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9
			WHERE (SELECT count(*) FROM presets) < ?10
				AND (?8 IS NULL OR (SELECT count(*) FROM presets WHERE key_id = ?8) < ?11)
			ON CONFLICT DO NOTHING RETURNING *`,
		)
			.bind(
				row.name,
				row.prefix,
				row.output,
				row.prompt,
				row.language,
				row.max_tokens,
				row.write_back,
				row.key_id,
				row.created_at,
				MAX_PRESETS,
				MAX_PRESETS_PER_KEY,
			)
			.first()
			.then(parseRow(PresetRow));
		if (!inserted) throw await refusal(c.env.DB, row.key_id, body.name, body.prefix);
		return c.json(toPreset(inserted), 201);
	})
	.openapi(listPresetsRoute, async (c) => {
		const principal = c.get("principal");
		const rows = (await allPresets(c.env.DB)).filter((p) => visible(principal, p.prefix));
		return c.json({ data: rows.map(toPreset) }, 200);
	})
	.openapi(getPresetRoute, async (c) => {
		const { name } = c.req.valid("param");
		const row = await getPreset(c.env.DB, name);
		if (!row || !visible(c.get("principal"), row.prefix)) throw notFound(`Preset ${name}`);
		return c.json(toPreset(row), 200);
	})
	.openapi(deletePresetRoute, async (c) => {
		const { name } = c.req.valid("param");
		const row = await getPreset(c.env.DB, name);
		if (!row || !visible(c.get("principal"), row.prefix)) throw notFound(`Preset ${name}`);
		const deleted = await c.env.DB.prepare("DELETE FROM presets WHERE name = ?1 AND prefix = ?2 RETURNING *")
			.bind(name, row.prefix)
			.first()
			.then(parseRow(PresetRow));
		if (!deleted) throw notFound(`Preset ${name}`);
		return c.json(toPreset(deleted), 200);
	});
