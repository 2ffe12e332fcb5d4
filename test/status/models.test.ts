/** GET /v1/models: the configured chain with each model's health, for the admin and for scoped keys. */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { ModelList } from "../../shared/models/model-list";
import { parseModelChain } from "../../shared/models/registry";
import { fixture, uniqueKey, upload } from "../support/fixtures";
import { LLAVA, MOONDREAM, resetModels } from "../support/models";
import { runConsumer } from "../support/queue";
import { call, createKey, errorOf, parsed } from "./support";

beforeEach(resetModels);

describe("GET /v1/models", () => {
	it("lists MODEL_CHAIN in order with exactly the documented fields; nothing called yet is ok with no figures", async () => {
		const res = await call("GET", "/v1/models");
		expect(res.status).toBe(200);
		const body = await parsed(res, ModelList);
		expect(Object.keys(body)).toEqual(["data"]);
		const chain = parseModelChain(env.MODEL_CHAIN);
		expect(body.data.map((m) => m.id)).toEqual(chain.map((a) => a.id));
		body.data.forEach((model, i) => {
			expect(Object.keys(model).sort()).toEqual(
				["calls_1h", "failures_1h", "id", "latency_ms_p50_1h", "position", "since", "status", "task"].sort(),
			);
			expect(model).toEqual({
				id: chain[i]?.id,
				task: chain[i]?.task,
				position: i + 1,
				status: "ok",
				since: null,
				calls_1h: 0,
				failures_1h: 0,
				latency_ms_p50_1h: null,
			});
		});
		expect(body.data.map((m) => m.task)).toContain("Text Generation");
	});

	it("a scoped key sees the same list as the admin, with the health every consumer shares", async () => {
		const key = uniqueKey("gone-models.jpg");
		await runConsumer([await upload(key, await fixture("small.jpg"))], {
			env: { EMULATOR_GONE_MODELS: MOONDREAM },
		});
		const scoped = await createKey("some/prefix/");
		const admin = await parsed(await call("GET", "/v1/models"), ModelList);
		const res = await call("GET", "/v1/models", { token: scoped.token });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual(admin);
		const [first, second] = admin.data;
		expect(first).toMatchObject({
			id: MOONDREAM,
			status: "gone",
			calls_1h: 1,
			failures_1h: 1,
			latency_ms_p50_1h: null,
		});
		expect(Date.parse(first?.since ?? "")).not.toBeNaN();
		expect(second).toMatchObject({ id: LLAVA, status: "ok", calls_1h: 1, failures_1h: 0 });
		expect(second?.since).not.toBeNull();
	});

	it("needs a token", async () => {
		const res = await call("GET", "/v1/models", { token: null });
		expect(res.status).toBe(401);
		expect((await errorOf(res)).code).toBe("unauthorized");
	});
});
