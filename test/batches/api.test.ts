/**
 * The batch endpoints' contract: validation (400 naming the field), the Batch JSON, listing with a
 * cursor and a status filter, scoped keys (create and see only batches inside their prefix, 404
 * otherwise), and the progress of running batches in /v1/stats.
 */

import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { Batch } from "../../shared/batches/schema";
import { Stats } from "../../workers/status/jobs/stats";
import { call, createKey, errorOf, invalidFields, pageOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { counts, createBatch, deliverPage, getBatch, putObjects, settled, unsentBatch, waitForBatch } from "./support";

describe("POST /v1/batches", () => {
	it.each([
		[{}, ["prefix", "keys", "from_batch"]],
		[{ prefix: "a/", keys: ["a/1.jpg"] }, ["prefix", "keys", "from_batch"]],
		[{ keys: [] }, ["keys"]],
		[{ keys: Array.from({ length: 10_001 }, (_, i) => `k/${i}`) }, ["keys"]],
		[{ prefix: "a/", max_tokens: 0 }, ["max_tokens"]],
		[{ prefix: "a/", prompt: "" }, ["prompt"]],
		[
			{ prefix: "a/", metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"])) },
			["metadata"],
		],
		[{ prefix: "a/", metadata: { n: 1 } }, ["metadata.n"]],
		[{ prefix: "a/", skip_captioned: "yes" }, ["skip_captioned"]],
		[{ prefix: "a/", callback_url: "ftp://example.com/x" }, ["callback_url"]],
		[{ prefix: "a/", colour: "red" }, ["colour"]],
	])("%j is a 400 naming %j", async (body, fields) => {
		const res = await call("POST", "/v1/batches", { json: body });
		expect(res.status).toBe(400);
		expect(await invalidFields(res)).toEqual(fields);
	});

	it("a callback URL to a private address is refused in production mode (unsafe_url)", async () => {
		// The test config runs in local mode, where loopback is allowed: a private LAN address is not.
		const res = await call("POST", "/v1/batches", { json: { prefix: "a/", callback_url: "http://10.0.0.1/hook" } });
		expect(res.status).toBe(400);
		expect((await errorOf(res)).code).toBe("unsafe_url");
	});

	it("answers 202 with the Batch JSON, exactly its documented fields", async () => {
		const prefix = uniqueKey("shape/");
		const batch = await createBatch({ prefix, prompt: "Describe", max_tokens: 100, metadata: { a: "1", b: "two" } });
		expect(Object.keys(batch).sort()).toEqual(
			[
				"completed_at",
				"counts",
				"created_at",
				"estimate",
				"id",
				"key_count",
				"listed_at",
				"max_tokens",
				"metadata",
				"models",
				"prefix",
				"prompt",
				"recaption",
				"rate_per_minute",
				"eta_seconds",
				"spillover",
				"status",
				"usage",
				"output",
				"language",
				"write_back",
			].sort(),
		);
		expect(batch).toEqual({
			id: expect.stringMatching(/^bat_[0-9A-Z]{26}$/),
			status: "listing",
			prefix,
			key_count: null,
			prompt: "Describe",
			max_tokens: 100,
			output: null,
			language: null,
			write_back: null,
			metadata: { a: "1", b: "two" },
			recaption: null,
			estimate: null,
			counts: counts({}),
			usage: { input_tokens: 0, output_tokens: 0, jobs_with_usage: 0 },
			spillover: false,
			models: {},
			created_at: expect.any(String),
			listed_at: null,
			completed_at: null,
			rate_per_minute: null,
			eta_seconds: null,
		});
		expect(await getBatch(batch.id)).toMatchObject({ id: batch.id, prefix });
		const spilling = await createBatch({ prefix: uniqueKey("spill/"), spillover: true });
		expect(await getBatch(spilling.id)).toMatchObject({ spillover: true, models: {} });
		expect((await call("GET", "/v1/batches/bat_doesnotexist")).status).toBe(404);
		// The empty prefix is listed in the background: let that finish within this test.
		expect(await waitForBatch(batch.id, settled)).toMatchObject({ status: "completed", counts: counts({}) });
	});
});

describe("GET /v1/batches", () => {
	it("lists newest first with a cursor, and filters by status", async () => {
		// A scoped key sees only these batches, which makes the list exact.
		const scope = uniqueKey("list/");
		const key = await createKey(scope);
		const ids: string[] = [];
		for (let i = 0; i < 3; i++) ids.push((await unsentBatch(`${scope}${i}/`)).id);
		await putObjects([`${scope}done/x.jpg`]);
		const done = await waitForBatch((await createBatch({ prefix: `${scope}done/` }, key.token)).id, settled);

		const first = await call("GET", "/v1/batches?limit=2", { token: key.token });
		const page1 = await parsed(first, pageOf(Batch));
		expect(page1.data.map((b) => b.id)).toEqual([done.id, ids[2]]);
		const second = await call("GET", `/v1/batches?limit=2&cursor=${page1.next_cursor}`, { token: key.token });
		const page2 = await parsed(second, pageOf(Batch));
		expect(page2).toEqual({
			data: [expect.objectContaining({ id: ids[1] }), expect.objectContaining({ id: ids[0] })],
			next_cursor: null,
		});

		const completed = await call("GET", "/v1/batches?status=completed", { token: key.token });
		expect((await parsed(completed, pageOf(Batch))).data.map((b) => b.id)).toEqual([done.id]);
		const listing = await call("GET", "/v1/batches?status=listing", { token: key.token });
		expect((await parsed(listing, pageOf(Batch))).data.map((b) => b.id)).toEqual([...ids].reverse());
		expect((await call("GET", "/v1/batches?cursor=nonsense")).status).toBe(400);
		expect((await call("GET", "/v1/batches?status=done")).status).toBe(400);
	});
});

describe("scoped keys", () => {
	it("create and see only batches inside their prefix; everything else is 404", async () => {
		const base = uniqueKey("scope/");
		const mine = `${base}mine/`;
		const key = await createKey(mine);
		const token = key.token;

		// Creating: a prefix or keys outside the scope do not exist for this key.
		const outsidePrefix = await call("POST", "/v1/batches", { json: { prefix: `${base}theirs/` }, token });
		expect(outsidePrefix.status).toBe(404);
		const wholeBucket = await call("POST", "/v1/batches", { json: { prefix: "" }, token });
		expect(wholeBucket.status).toBe(404);
		const mixedKeys = await call("POST", "/v1/batches", {
			json: { keys: [`${mine}a.jpg`, `${base}theirs/b.jpg`] },
			token,
		});
		expect(mixedKeys.status).toBe(404);

		const ownPrefix = await createBatch({ prefix: `${mine}photos/` }, token);
		const ownKeys = await createBatch({ keys: [`${mine}a/1.jpg`, `${mine}b/2.jpg`] }, token);
		// An admin batch over a wider prefix, and one of keys that are not all inside the scope.
		const theirs = await unsentBatch(base);
		const straddling = await createBatch({ keys: [`${mine}x.jpg`, `${base}theirs/y.jpg`] });

		for (const id of [theirs.id, straddling.id]) {
			expect((await call("GET", `/v1/batches/${id}`, { token })).status).toBe(404);
			expect((await call("POST", `/v1/batches/${id}/cancel`, { token })).status).toBe(404);
			expect((await call("GET", `/v1/batches/${id}/results`, { token })).status).toBe(404);
		}
		expect((await call("GET", `/v1/batches/${ownKeys.id}`, { token })).status).toBe(200);
		const listed = await call("GET", "/v1/batches?limit=100", { token });
		const visible = (await parsed(listed, pageOf(Batch))).data.map((b) => b.id);
		expect(visible.sort()).toEqual([ownPrefix.id, ownKeys.id].sort());
		// The admin sees them all.
		expect((await call("GET", `/v1/batches/${theirs.id}`)).status).toBe(200);
		// Their listings run in the background: let them finish within this test (the keys are not in
		// the bucket, so they are counted missing).
		for (const b of [ownPrefix, ownKeys, straddling]) await waitForBatch(b.id, settled);
		expect((await getBatch(ownKeys.id)).counts).toEqual(counts({ missing: 2 }));
	});
});

describe("GET /v1/stats", () => {
	it("shows the progress of batches still listing or running, from their maintained counts", async () => {
		const scope = uniqueKey("stats-batches/");
		const key = await createKey(scope);
		await putObjects([`${scope}a/1.jpg`, `${scope}a/2.jpg`, `${scope}a/3.jpg`, `${scope}a/4.jpg`]);
		const running = await unsentBatch(`${scope}a/`);
		// One page listed, its jobs held queued: the batch is still listing with 3 queued.
		await deliverPage(running.id, 0, { holdCaptions: true });
		await putObjects([`${scope}b/1.jpg`]);
		const finished = await waitForBatch((await createBatch({ prefix: `${scope}b/` }, key.token)).id, settled);

		const res = await call("GET", "/v1/stats", { token: key.token });
		const stats = await parsed(res, Stats);
		expect(stats.batches).toEqual([await getBatch(running.id)]);
		expect(stats.batches[0]).toMatchObject({ status: "listing", counts: { total: 3, queued: 3 } });
		expect(stats.batches.map((b) => b.id)).not.toContain(finished.id);
		// Admin stats include it too, among any others still running: other files' batches, some
		// made row by row by their tests, are read for their ids only.
		const all = z
			.object({ batches: z.array(z.object({ id: z.string() })) })
			.parse(await (await call("GET", "/v1/stats")).json());
		expect(all.batches.map((b) => b.id)).toContain(running.id);
		expect(env.BATCH_PAGE_SIZE).toBe("3");
	});
});
