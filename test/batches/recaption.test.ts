/**
 * Re-caption and retry by filter: a `recaption` batch makes jobs for exactly the objects its rules
 * do not keep (counting the others `skipped`), and a `from_batch` batch makes one job per object of
 * that batch whose job ended as `only` says. Both through the API and the real queues.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Caption } from "../../shared/captions/schema";
import { call, createKey, errorOf, parsed } from "../status/support";
import { uniqueKey } from "../support/fixtures";
import { LLAVA, MOONDREAM } from "../support/models";
import { captionAll, createBatch, jobsOfBatch, putObjects, settled, waitForBatch } from "./support";

const captionOf = async (key: string) => parsed(await call("GET", `/v1/captions/${encodeURIComponent(key)}`), Caption);

describe("recaption", () => {
	it("over objects captioned by two models, captions exactly the other model's (and the uncaptioned), skipping the rest", async () => {
		const prefix = uniqueKey("recaption/");
		const onMoondream = ["a.jpg", "b.jpg", "c.jpg"].map((k) => `${prefix}${k}`);
		const onLlava = ["d.jpg", "e.jpg"].map((k) => `${prefix}${k}`);
		const human = `${prefix}f.jpg`;
		const uncaptioned = `${prefix}g.jpg`;
		await putObjects([...onMoondream, ...onLlava, human, uncaptioned]);
		await captionAll(onMoondream, MOONDREAM);
		await captionAll(onLlava, LLAVA);
		await captionAll([human], LLAVA);
		expect(
			(await call("PUT", `/v1/captions/${encodeURIComponent(human)}`, { json: { text: "By hand." } })).status,
		).toBe(200);

		const batch = await createBatch({ prefix, recaption: { unless_model: [MOONDREAM] } });
		expect(batch.recaption).toEqual({ unless_model: [MOONDREAM], overwrite_human: false });
		const done = await waitForBatch(batch.id, settled);
		expect(done.counts).toMatchObject({ total: 7, skipped: 4, succeeded: 3, failed: 0 });
		const jobs = await jobsOfBatch(batch.id);
		expect(jobs.map((j) => j.key)).toEqual([...onLlava, uncaptioned]);
		for (const key of onLlava) expect(await captionOf(key)).toMatchObject({ model: MOONDREAM, versions: 2 });
		expect(await captionOf(human)).toMatchObject({ source: "human", text: "By hand." });
		for (const key of onMoondream) expect((await captionOf(key)).versions).toBe(1);
	});

	it("older_than keeps captions made after it; overwrite_human re-captions a person's caption and makes the new one current", async () => {
		const prefix = uniqueKey("recaption-human/");
		const [old, human] = [`${prefix}old.jpg`, `${prefix}human.jpg`];
		await putObjects([old, human]);
		await captionAll([old], LLAVA);
		const cut = new Date().toISOString();
		expect((await call("PUT", `/v1/captions/${encodeURIComponent(human)}`, { json: { text: "Mine." } })).status).toBe(
			200,
		);

		// The human caption is newer than the cut: kept by older_than even with overwrite_human.
		const kept = await createBatch({ prefix, recaption: { older_than: cut, overwrite_human: true } });
		const keptDone = await waitForBatch(kept.id, settled);
		expect(keptDone.counts).toMatchObject({ total: 2, skipped: 1, succeeded: 1 });
		expect((await jobsOfBatch(kept.id)).map((j) => j.key)).toEqual([old]);

		const overwrite = await createBatch({ prefix, recaption: { unless_model: [MOONDREAM], overwrite_human: true } });
		const overwritten = await waitForBatch(overwrite.id, settled);
		expect(overwritten.counts).toMatchObject({ total: 2, skipped: 1, succeeded: 1 });
		expect((await jobsOfBatch(overwrite.id)).map((j) => j.key)).toEqual([human]);
		expect(await captionOf(human)).toMatchObject({ source: "ai", model: MOONDREAM, versions: 2 });
	});
});

describe("from_batch", () => {
	it("makes exactly one job per object whose job ended as `only` says", async () => {
		const prefix = uniqueKey("retry/");
		const keys = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"].map((k) => `${prefix}${k}`);
		await putObjects(keys);
		const first = await createBatch({ prefix });
		await waitForBatch(first.id, settled);
		// Two of its jobs end failed (as a bad night would leave them), with different codes.
		const [a, , c] = await jobsOfBatch(first.id);
		for (const [job, code] of [
			[a, "model_unavailable"],
			[c, "model_error"],
		] as const) {
			await env.DB.prepare("UPDATE jobs SET status = 'failed', error_code = ?2, caption = NULL WHERE id = ?1")
				.bind(job?.id, code)
				.run();
		}

		const retry = await createBatch({ from_batch: first.id, only: { status: ["failed"] } });
		expect(retry).toMatchObject({ prefix: null, key_count: 2 });
		const retried = await waitForBatch(retry.id, settled);
		expect(retried.counts).toMatchObject({ total: 2, succeeded: 2, skipped: 0 });
		expect((await jobsOfBatch(retry.id)).map((j) => j.key)).toEqual([keys[0], keys[2]]);

		const narrow = await createBatch({
			from_batch: first.id,
			only: { status: ["failed"], error_code: ["model_unavailable"] },
		});
		await waitForBatch(narrow.id, settled);
		expect((await jobsOfBatch(narrow.id)).map((j) => j.key)).toEqual([keys[0]]);
	});

	it("answers 422 no_objects when nothing matches, 400 for only without from_batch, 404 outside the key's scope", async () => {
		const prefix = uniqueKey("retry-scope/");
		await putObjects([`${prefix}a.jpg`]);
		const first = await createBatch({ prefix });
		await waitForBatch(first.id, settled);
		const none = await call("POST", "/v1/batches", { json: { from_batch: first.id, only: { status: ["failed"] } } });
		expect(none.status).toBe(422);
		expect((await errorOf(none)).code).toBe("no_objects");

		const stray = await call("POST", "/v1/batches", { json: { prefix, only: { status: ["failed"] } } });
		expect(stray.status).toBe(400);

		const outsider = await createKey(uniqueKey("elsewhere/"));
		const hidden = await call("POST", "/v1/batches", {
			token: outsider.token,
			json: { from_batch: first.id, only: { status: ["succeeded"] } },
		});
		expect(hidden.status).toBe(404);
		const both = await call("POST", "/v1/batches", { json: { prefix, from_batch: first.id } });
		expect(both.status).toBe(400);
	});
});
