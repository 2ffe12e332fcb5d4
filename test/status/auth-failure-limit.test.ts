/**
 * Requests to /v1 without a valid credential are limited per client address (`CF-Connecting-IP`):
 * past AUTH_FAILURE_BURST failures they are answered 429 `too_many_auth_failures` with
 * `Retry-After` before any token is looked up in D1, while a key that already works from that
 * address goes on working. The test pool's limit is out of the way (its requests share one
 * address), so these run the real status Worker with a low one and an address of their own.
 */
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { randomToken } from "../../shared/ids";
import { clientAddress } from "../../workers/status/auth/client-address";
import { sha256Hex } from "../../workers/status/auth/tokens";
import status from "../../workers/status/index";
import { ADMIN, createKey, errorOf } from "./support";

// One failure every ten seconds, three at once after an idle spell: a slot coming free in the
// middle of a test's few requests would change its answers, and ten seconds leave room for a
// loaded machine (one a second did not always).
const LIMITS = { AUTH_FAILURE_LIMIT_PER_MINUTE: "6", AUTH_FAILURE_BURST: "3" };
// One failure a second: for the test that waits for a slot to come back.
const FAST_REFILL = { AUTH_FAILURE_LIMIT_PER_MINUTE: "60", AUTH_FAILURE_BURST: "3" };
/** LIMITS, as the limiter's policy, for the tests that ask the address's limiter directly. */
const POLICY = {
	requestsPerMinute: Number(LIMITS.AUTH_FAILURE_LIMIT_PER_MINUTE),
	burst: Number(LIMITS.AUTH_FAILURE_BURST),
	maxWaitMs: 0,
};

/** An address no other test uses. */
const newAddress = () =>
	`10.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
const randomKeyToken = () => `rck_${randomToken(32)}`;

/** Requests from an address to the real status Worker running with a low limit (`limits`). */
const caller =
	(limits: Record<string, string>) =>
	(address: string | null, token: string | null, path = "/v1/jobs", authorization?: string) => {
		const headers = new Headers();
		if (address !== null) headers.set("cf-connecting-ip", address);
		if (authorization !== undefined) headers.set("authorization", authorization);
		else if (token !== null) headers.set("authorization", `Bearer ${token}`);
		const request = new Request(`https://status.test${path}`, { headers });
		return status.fetch(request, { ...env, ...limits }, createExecutionContext());
	};
const callFrom = caller(LIMITS);

async function statusesFrom(address: string, tokens: (string | null)[], call = callFrom): Promise<number[]> {
	const statuses: number[] = [];
	for (const token of tokens) statuses.push((await call(address, token)).status);
	return statuses;
}

describe("failed authentication is limited per client address", () => {
	it("random tokens: the burst is answered 401, then 429 too_many_auth_failures with Retry-After", async () => {
		const address = newAddress();
		const callFast = caller(FAST_REFILL);
		// Sent together, so that no slot comes free among them however long each takes (the address's
		// limiter takes them one at a time, and counts a token when it admits it).
		const answers = await Promise.all(Array.from({ length: 4 }, () => callFast(address, randomKeyToken())));
		expect(answers.map((r) => r.status).sort()).toEqual([401, 401, 401, 429]);
		const refused = answers.find((r) => r.status === 429);
		if (!refused) throw new Error("no answer was refused");
		expect(refused.headers.get("retry-after")).toBe("1");
		expect(await errorOf(refused)).toEqual({
			code: "too_many_auth_failures",
			message: "Too many requests without a valid token from this address: at most 60 a minute",
			details: { address, limit_per_minute: 60, burst: 3, retry_after_seconds: 1 },
		});

		// After Retry-After the address may try again.
		await new Promise((resolve) => setTimeout(resolve, 1100));
		expect((await callFast(address, randomKeyToken())).status).toBe(401);
	});

	it("sent at once, no more random tokens are checked than the address has failures left", async () => {
		const address = newAddress();
		const answers = await Promise.all(Array.from({ length: 12 }, () => callFrom(address, randomKeyToken())));
		const statuses = answers.map((r) => r.status).sort();
		expect(statuses).toEqual([...Array(3).fill(401), ...Array(9).fill(429)]);

		// What makes it hold under any interleaving: a token is counted when it is admitted, before its
		// lookup answers, so a fourth admitted while three lookups are still out is refused.
		const limiter = env.AUTH_FAILURE_LIMITER.getByName(newAddress());
		const digests = await Promise.all(Array.from({ length: 4 }, () => sha256Hex(randomKeyToken())));
		const admitted = [];
		for (const digest of digests) admitted.push((await limiter.admit(POLICY, digest)).kind);
		expect(admitted).toEqual(["admitted", "admitted", "admitted", "refused"]);
		// One of the three authenticated: its slot is given back, and the next unknown token may be checked.
		await limiter.trust(POLICY, digests[0] ?? "");
		expect((await limiter.admit(POLICY, await sha256Hex(randomKeyToken()))).kind).toBe("admitted");
	});

	it("the limit runs before the token is looked up: a key new to a refused address waits too", async () => {
		const address = newAddress();
		await statusesFrom(address, [randomKeyToken(), randomKeyToken(), randomKeyToken()]);
		// Had D1 been asked, this live key would have been found.
		const fresh = await createKey();
		const refused = await callFrom(address, fresh.token);
		expect(refused.status).toBe(429);
		expect((await errorOf(refused)).code).toBe("too_many_auth_failures");
		// Guesses at the admin token are refused unread as well.
		expect((await callFrom(address, `${ADMIN}x`)).status).toBe(429);
	});

	it("a key that works from the address goes on working while random tokens from it are refused", async () => {
		const address = newAddress();
		const key = await createKey();
		expect((await callFrom(address, key.token)).status).toBe(200);
		expect(
			await statusesFrom(address, [randomKeyToken(), randomKeyToken(), randomKeyToken(), randomKeyToken()]),
		).toEqual([401, 401, 401, 429]);
		expect(await statusesFrom(address, [key.token, key.token, key.token, key.token, key.token])).toEqual([
			200, 200, 200, 200, 200,
		]);
		expect((await callFrom(address, randomKeyToken())).status).toBe(429);
	});

	it("the admin token that works from the address goes on working too", async () => {
		const address = newAddress();
		expect((await callFrom(address, ADMIN)).status).toBe(200);
		expect(
			await statusesFrom(address, [randomKeyToken(), randomKeyToken(), randomKeyToken(), randomKeyToken()]),
		).toEqual([401, 401, 401, 429]);
		expect((await callFrom(address, ADMIN)).status).toBe(200);
	});

	it("a key revoked since it worked from the address is refused like any other token", async () => {
		const address = newAddress();
		const key = await createKey();
		expect((await callFrom(address, key.token)).status).toBe(200);
		const revoke = await status.fetch(
			new Request(`https://status.test/v1/keys/${key.id}`, {
				method: "DELETE",
				headers: { authorization: `Bearer ${ADMIN}` },
			}),
			env,
			createExecutionContext(),
		);
		expect(revoke.status).toBe(200);
		expect(await statusesFrom(address, [key.token])).toEqual([401]);
		// Its first failure made the address forget it: the limiter now counts it like any unknown token
		// (asking takes the second failure slot).
		const limiter = env.AUTH_FAILURE_LIMITER.getByName(address);
		expect(await limiter.admit(POLICY, await sha256Hex(key.token))).toEqual({ kind: "admitted", trusted: false });
		expect(await statusesFrom(address, [key.token, key.token, key.token])).toEqual([401, 429, 429]);
	});

	it("requests with no token or a malformed header count as failures", async () => {
		const address = newAddress();
		expect((await callFrom(address, null)).status).toBe(401);
		expect((await callFrom(address, null, "/v1/stats", "Basic abc")).status).toBe(401);
		expect((await callFrom(address, null, "/v1/keys")).status).toBe(401);
		const refused = await callFrom(address, null);
		expect(refused.status).toBe(429);
		// The next slot, ten seconds after the first failure, less the time these requests took.
		expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(5);
		expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(10);
	});

	it("stream tokens: forged ones count as failures; a signed one opens its stream even from a refused address", async () => {
		const address = newAddress();
		const made = await exports.default.fetch(
			new Request("https://status.test/v1/events/tokens", {
				method: "POST",
				headers: { authorization: `Bearer ${ADMIN}` },
			}),
		);
		expect(made.status).toBe(201);
		const { token } = (await made.json()) as { token: string };
		const forged = `${token.slice(0, -4)}${token.endsWith("0000") ? "1111" : "0000"}`;
		const stream = (t: string) => callFrom(address, null, `/v1/events?token=${t}`);
		expect([(await stream(forged)).status, (await stream(forged)).status, (await stream(forged)).status]).toEqual([
			401, 401, 401,
		]);
		expect((await stream(forged)).status).toBe(429);
		const valid = await stream(token);
		expect(valid.status).toBe(200);
		await valid.body?.cancel();
	});

	it("requests that authenticate do not use up the address's failures", async () => {
		const address = newAddress();
		const key = await createKey();
		expect(
			await statusesFrom(
				address,
				Array.from({ length: 8 }, () => key.token),
			),
		).toEqual(Array(8).fill(200));
		expect(await statusesFrom(address, [randomKeyToken(), randomKeyToken(), randomKeyToken()])).toEqual([
			401, 401, 401,
		]);
	});

	it("each address has its own limit, and public routes are not limited", async () => {
		const [flooding, other] = [newAddress(), newAddress()];
		await statusesFrom(flooding, [null, null, null]);
		expect((await callFrom(flooding, null)).status).toBe(429);
		expect((await callFrom(other, randomKeyToken())).status).toBe(401);
		expect((await callFrom(flooding, null, "/healthz")).status).toBe(200);
		expect((await callFrom(flooding, null, "/openapi.json")).status).toBe(200);
	});

	it("the addresses of one IPv6 /64 share a limit", async () => {
		const hex = () => Math.floor(Math.random() * 65536).toString(16);
		const net = `2001:db8:${hex()}:${hex()}`;
		await statusesFrom(`${net}::1`, [null, null]);
		expect((await callFrom(`${net}:ffff::9`, null)).status).toBe(401);
		const refused = await callFrom(`${net}:0:0:0:2`, null);
		expect(refused.status).toBe(429);
		expect((await errorOf(refused)).details).toMatchObject({ address: `${net}::/64` });
		expect((await callFrom(`${net.replace("2001:db8:", "2001:db9:")}::1`, null)).status).toBe(401);
	});
});

describe("the client address a failure counts against", () => {
	it("is CF-Connecting-IP; IPv6 by its /64; one shared `unknown` address when the header is absent", () => {
		const of = (value?: string) => clientAddress(new Headers(value === undefined ? {} : { "cf-connecting-ip": value }));
		expect(of("198.51.100.7")).toBe("198.51.100.7");
		expect(of("2001:db8:a:b:c:d:e:f")).toBe("2001:db8:a:b::/64");
		expect(of("2001:DB8:a:b::1")).toBe("2001:db8:a:b::/64");
		expect(of("2001:db8::1")).toBe("2001:db8:0:0::/64");
		expect(of("::1")).toBe("0:0:0:0::/64");
		expect(of("::ffff:198.51.100.7")).toBe("198.51.100.7");
		expect(of()).toBe("unknown");
		expect(of("")).toBe("unknown");
	});
});
