/**
 * The presets API and what a preset does: the longest matching prefix wins, explicit options and
 * object metadata override it field by field (preset < metadata < explicit), and a key limited to
 * a prefix manages only presets inside it.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Job } from "../../shared/jobs/schema";
import { emulator } from "../../shared/models/emulator";
import { Preset } from "../../shared/presets/schema";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { MISTRAL, resetModels } from "../support/models";
import { onlyJob, runConsumer } from "../support/queue";
import { call, createKey, errorOf, invalidFields, parsed } from "./support";

beforeEach(resetModels);

const uniqueName = () => `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

async function createPreset(body: Record<string, unknown>, token?: string) {
	return call("POST", "/v1/presets", { json: body, ...(token ? { token } : {}) });
}

describe("the presets API", () => {
	it("creates, gets, lists and deletes a preset", async () => {
		const name = uniqueName();
		const prefix = uniqueKey("shop/");
		const res = await createPreset({ name, prefix, output: "alt_text", language: "pt-br", write_back: "sidecar" });
		expect(res.status).toBe(201);
		const created = await parsed(res, Preset);
		expect(created).toMatchObject({
			name,
			prefix,
			output: "alt_text",
			language: "pt-BR",
			prompt: null,
			max_tokens: null,
			write_back: { target: "sidecar", mode: "overwrite" },
		});
		expect(await parsed(await call("GET", `/v1/presets/${name}`), Preset)).toEqual(created);
		const list = await parsed(await call("GET", "/v1/presets"), z.object({ data: z.array(Preset) }));
		expect(list.data).toContainEqual(created);
		expect(await parsed(await call("DELETE", `/v1/presets/${name}`), Preset)).toEqual(created);
		expect((await call("GET", `/v1/presets/${name}`)).status).toBe(404);
	});

	it("a second preset with the same name or prefix is 409 preset_exists; bad fields are 400", async () => {
		const name = uniqueName();
		const prefix = uniqueKey("dup/");
		expect((await createPreset({ name, prefix, output: "tags" })).status).toBe(201);
		for (const body of [
			{ name, prefix: `${prefix}other/`, output: "tags" },
			{ name: uniqueName(), prefix, output: "title" },
		]) {
			const res = await createPreset(body);
			expect(res.status).toBe(409);
			expect((await errorOf(res)).code).toBe("preset_exists");
		}
		const bad = await createPreset({ name: "Bad Name", prefix: "x/", output: "poem", language: "!!" });
		expect(bad.status).toBe(400);
		expect((await invalidFields(bad)).sort()).toEqual(["language", "name", "output"]);
		const schema = await createPreset({
			name: uniqueName(),
			prefix: uniqueKey("s/"),
			output: { json_schema: { type: 12 } },
		});
		expect(schema.status).toBe(400);
	});

	it("an API key makes at most 50 presets (409 too_many_presets), and another key still can", async () => {
		const folder = uniqueKey("cap/");
		const key = await createKey(folder);
		const other = await createKey(uniqueKey("cap-other/"));
		// 49 of the key's own, written as the route writes them.
		const names = Array.from({ length: 49 }, () => uniqueName());
		await env.DB.batch(
			names.map((name, i) =>
				env.DB.prepare(
					"INSERT INTO presets (name, prefix, output, key_id, created_at) VALUES (?, ?, 'tags', ?, ?)",
				).bind(name, `${folder}p${i}/`, key.id, Date.now()),
			),
		);
		// Five at once for the one place left: one is made.
		const racing = await Promise.all(
			[1, 2, 3, 4, 5].map((i) =>
				createPreset({ name: uniqueName(), prefix: `${folder}last${i}/`, output: "tags" }, key.token),
			),
		);
		expect(racing.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
		const own = await env.DB.prepare("SELECT count(*) AS n FROM presets WHERE key_id = ?").bind(key.id).first("n");
		expect(own).toBe(50);
		const refused = await createPreset({ name: uniqueName(), prefix: `${folder}over/`, output: "tags" }, key.token);
		expect(refused.status).toBe(409);
		expect(await errorOf(refused)).toMatchObject({ code: "too_many_presets", message: expect.stringContaining("50") });
		const theirs = await createPreset({ name: uniqueName(), prefix: `${other.prefix}a/`, output: "tags" }, other.token);
		expect(theirs.status).toBe(201);
		await env.DB.prepare("DELETE FROM presets WHERE key_id IN (?, ?)").bind(key.id, other.id).run();
	});

	it("a key limited to a prefix manages and sees only presets inside it", async () => {
		const scope = uniqueKey("tenant/");
		const key = await createKey(scope);
		const outside = await createPreset(
			{ name: uniqueName(), prefix: uniqueKey("elsewhere/"), output: "tags" },
			key.token,
		);
		expect(outside.status).toBe(404);
		const theirs = uniqueName();
		expect((await createPreset({ name: theirs, prefix: uniqueKey("admin-only/"), output: "tags" })).status).toBe(201);
		const mine = uniqueName();
		expect((await createPreset({ name: mine, prefix: `${scope}cats/`, output: "tags" }, key.token)).status).toBe(201);
		const list = await parsed(
			await call("GET", "/v1/presets", { token: key.token }),
			z.object({ data: z.array(Preset) }),
		);
		expect(list.data.map((p) => p.name)).toEqual([mine]);
		expect((await call("GET", `/v1/presets/${theirs}`, { token: key.token })).status).toBe(404);
		expect((await call("DELETE", `/v1/presets/${theirs}`, { token: key.token })).status).toBe(404);
		expect((await call("GET", `/v1/presets/${theirs}`)).status).toBe(200);
	});
});

describe("preset precedence", () => {
	it("the longest matching prefix wins; metadata overrides it field by field; explicit options override both", async () => {
		const root = uniqueKey("catalogue/");
		const inner = `${root}shoes/`;
		expect((await createPreset({ name: uniqueName(), prefix: root, output: "title" })).status).toBe(201);
		expect(
			(await createPreset({ name: uniqueName(), prefix: inner, output: "tags", language: "de", max_tokens: 99 }))
				.status,
		).toBe(201);

		// Under the outer prefix only: its title.
		const outer = `${root}hat.png`;
		await runConsumer([await upload(outer, await fixture("small.png"))]);
		expect(await onlyJob(outer)).toMatchObject({ status: "succeeded", output: "title", language: null });

		// Under both: the inner preset, all its fields.
		const shoe = `${inner}boot.png`;
		await runConsumer([await upload(shoe, await fixture("small.png"))]);
		expect(await onlyJob(shoe)).toMatchObject({
			status: "succeeded",
			output: "tags",
			language: "de",
			max_tokens: 99,
			model: MISTRAL,
		});

		// Metadata overrides the preset's language only; the output stays the preset's.
		const english = `${inner}sandal.png`;
		await runConsumer([await upload(english, await fixture("small.png"), { language: "en" })]);
		expect(await onlyJob(english)).toMatchObject({
			status: "succeeded",
			output: "tags",
			language: "en",
			max_tokens: 99,
		});

		// Explicit options (POST /v1/jobs) override metadata and the preset.
		const res = await call("POST", "/v1/jobs", { json: { key: english, output: "alt_text", language: "fr" } });
		expect(res.status).toBe(202);
		const queued = await parsed(res, Job);
		expect(queued).toMatchObject({ output: "alt_text", language: "fr", result: null });
		emulator.reset();
		await runConsumer([{ kind: "caption-job", job_id: queued.id }]);
		const done = await parsed(await call("GET", `/v1/jobs/${queued.id}`), Job);
		expect(done).toMatchObject({ status: "succeeded", output: "alt_text", language: "fr", max_tokens: 99 });
		expect(typeof done.result).toBe("string");
		expect(done.result).toContain("[fr]");
	});
});
