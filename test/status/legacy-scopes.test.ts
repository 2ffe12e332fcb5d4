/**
 * Keys made before a key's scope had to be a whole folder: migration 0017 gives their prefix the
 * folder meaning and brings their subscriptions inside it. The test plays such a key (its row
 * rewritten to the old form), checks the gap it had, runs the migration's statements and checks
 * that the gap is closed and nothing inside the folder was lost.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { fixture, uniqueKey } from "../support/fixtures";
import { call, createKey } from "./support";

const MIGRATION = "0017_whole_folder_scopes.sql";

async function runMigration(): Promise<void> {
	const migration = env.TEST_MIGRATIONS.find((m) => m.name === MIGRATION);
	if (migration === undefined) throw new Error(`${MIGRATION} is not among the migrations`);
	await env.DB.batch(migration.queries.map((q) => env.DB.prepare(q)));
}

const SubscriptionRow = z.object({
	prefix: z.string().nullable(),
	status: z.string(),
	disabled_reason: z.string().nullable(),
});

async function subscription(id: string) {
	const row = await env.DB.prepare("SELECT prefix, status, disabled_reason FROM webhook_subscriptions WHERE id = ?")
		.bind(id)
		.first();
	return SubscriptionRow.parse(row);
}

describe("a key made with a prefix that is not a folder (before the rule)", () => {
	it("means the folder after migration 0017: customers/4 no longer reaches customers/42/, its subscriptions follow", async () => {
		const base = uniqueKey("");
		const key = await createKey(`${base}customers/4/`);
		const legacy = `${base}customers/4`;
		await env.DB.prepare("UPDATE api_keys SET prefix = ? WHERE id = ?").bind(legacy, key.id).run();

		const subscribe = async (prefix: string) => {
			const res = await call("POST", "/v1/webhooks", {
				token: key.token,
				json: { url: "http://127.0.0.1:9/legacy", events: ["job.succeeded"], prefix },
			});
			expect(res.status).toBe(201);
			return z.object({ id: z.string() }).parse(await res.json()).id;
		};
		const onOldPrefix = await subscribe(legacy);
		const inside = await subscribe(`${legacy}/raw/`);
		const neighbourSub = await subscribe(`${base}customers/42/`);

		const own = `${base}customers/4/cat.jpg`;
		const neighbour = `${base}customers/42/cat.jpg`;
		for (const k of [own, neighbour]) await env.BUCKET.put(k, await fixture("small.jpg"));
		const read = async (k: string) =>
			(await call("GET", `/v1/images/${encodeURIComponent(k)}`, { token: key.token })).status;
		// The gap the old meaning left open.
		expect(await read(neighbour)).toBe(200);

		await runMigration();

		const row = await env.DB.prepare("SELECT prefix FROM api_keys WHERE id = ?").bind(key.id).first("prefix");
		expect(row).toBe(`${legacy}/`);
		expect(await read(neighbour)).toBe(404);
		expect(await read(own)).toBe(200);
		expect(await subscription(onOldPrefix)).toEqual({ prefix: `${legacy}/`, status: "active", disabled_reason: null });
		expect(await subscription(inside)).toEqual({ prefix: `${legacy}/raw/`, status: "active", disabled_reason: null });
		expect(await subscription(neighbourSub)).toEqual({
			prefix: `${base}customers/42/`,
			status: "disabled",
			disabled_reason: "outside_key_scope",
		});

		// Running it again changes nothing: a folder prefix is left alone.
		await runMigration();
		expect(await env.DB.prepare("SELECT prefix FROM api_keys WHERE id = ?").bind(key.id).first("prefix")).toBe(
			`${legacy}/`,
		);
		expect((await subscription(onOldPrefix)).status).toBe("active");
	});
});
